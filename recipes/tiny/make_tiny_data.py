"""Regenerate the tiny recipe's toy data: two toy "languages" (en, tr lexicons) with the same
DET ADJ NOUN VERB ... grammar, NER spans on names, and raw text, plus a third (fo) for
add-language and few-shot. Deterministic; run from this folder: python make_tiny_data.py"""

import random
from pathlib import Path

LEXICON = {
    "en": {"DET": ["the", "a"], "ADJ": ["big", "red", "old"], "NOUN": ["dog", "house", "tree", "car"],
           "VERB": ["sees", "likes", "finds"], "ADP": ["in", "near"], "PROPN": ["anna", "berlin", "oslo", "maria"]},
    "tr": {"DET": ["bir", "bu"], "ADJ": ["büyük", "kırmızı", "eski"], "NOUN": ["köpek", "ev", "ağaç", "araba"],
           "VERB": ["görür", "sever", "bulur"], "ADP": ["ile", "için"], "PROPN": ["ayşe", "ankara", "izmir", "ali"]},
    "fo": {"DET": ["tann", "ein"], "ADJ": ["stórur", "reyður", "gamal"], "NOUN": ["hundur", "hús", "træ", "bilur"],
           "VERB": ["sær", "dámar", "finnur"], "ADP": ["í", "við"], "PROPN": ["jógvan", "tórshavn", "klaksvík", "sára"]},
}
PLACES = {"berlin", "oslo", "ankara", "izmir", "tórshavn", "klaksvík"}


def sentence(rng, lang):
    lex = LEXICON[lang]
    pattern = [["PROPN"], ["DET", "ADJ", "NOUN"], ["DET", "NOUN"]][rng.randrange(3)]
    pattern = pattern + ["VERB"] + [["DET", "NOUN"], ["PROPN"], ["DET", "ADJ", "NOUN"]][rng.randrange(3)]
    if rng.random() < 0.5:
        pattern = pattern + ["ADP", "PROPN"]
    words = [rng.choice(lex[tag]) for tag in pattern]
    return words, pattern + ["PUNCT"], words + ["."]


def ner_tag(word, tag):
    if tag != "PROPN":
        return "O"
    return "B-LOC" if word in PLACES else "B-PER"


def write_conllu(path, rng, lang, n):
    with open(path, "w", encoding="utf-8") as out:
        for i in range(n):
            _, tags, words = sentence(rng, lang)
            out.write(f"# sent_id = {lang}-{i + 1}\n# text = {' '.join(words)}\n")
            for j, (w, t) in enumerate(zip(words, tags), start=1):
                out.write(f"{j}\t{w}\t_\t{t}\t_\t_\t{j - 1}\t{'root' if j == 1 else 'dep'}\t_\t_\n")
            out.write("\n")


def write_ner(path, rng, lang, n):
    with open(path, "w", encoding="utf-8") as out:
        for _ in range(n):
            _, tags, words = sentence(rng, lang)
            for w, t in zip(words, tags):
                out.write(f"{w}\t{ner_tag(w, t)}\n")
            out.write("\n")


def write_raw(path, rng, lang, n):
    with open(path, "w", encoding="utf-8") as out:
        for _ in range(n):
            out.write(" ".join(sentence(rng, lang)[2]) + "\n")


if __name__ == "__main__":
    rng = random.Random(7)
    here = Path(__file__).parent
    for lang in ("en", "tr"):
        write_conllu(here / f"{lang}-pos-train.conllu", rng, lang, 60)
        write_conllu(here / f"{lang}-pos-dev.conllu", rng, lang, 12)
        write_raw(here / f"{lang}-raw.txt", rng, lang, 80)
    write_ner(here / "en-ner-train.tsv", rng, "en", 60)
    write_ner(here / "en-ner-dev.tsv", rng, "en", 12)
    write_raw(here / "fo-raw.txt", rng, "fo", 80)
    write_conllu(here / "fo-pos-train.conllu", rng, "fo", 30)
    write_conllu(here / "fo-pos-test.conllu", rng, "fo", 20)
