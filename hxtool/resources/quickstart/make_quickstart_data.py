"""Regenerate the quickstart data shipped inside the package from a full data folder (../shared/data).

    python hxtool/resources/quickstart/make_quickstart_data.py ../shared/data

Deterministic: seeded samples of whole sentences (CoNLL-U blocks, TSV blocks, raw lines) kept in their
original order and copied byte for byte, so running it twice writes identical files. Only data whose
licence allows redistribution is taken (CC BY-SA 4.0 treebanks and UNER, Tatoeba CC BY 2.0 FR, public-
domain UDHR); the non-commercial IMST (tr) treebank and CoNLL-2003 are left out on purpose, so Turkish
comes in as raw text only and Kazakh (KTB) is the Turkic POS source. Standard library only.
"""

from __future__ import annotations

import json
import random
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SEED = 1
# (folder in the data dir, files merged as the source, sentences kept, name written here)
TREEBANKS = [
    ("ud/en_ewt", ["train.conllu"], 500, "train.conllu"),
    ("ud/zh_gsd", ["dev.conllu"], 300, "train.conllu"),  # the current release (train is v1.4, tag CONJ)
    ("ud/kk_ktb", ["train.conllu", "test.conllu"], 400, "train.conllu"),  # KTB's README: merge both files
    ("ud/ug_udt", ["train.conllu"], 200, "train.conllu"),
    ("ud/ug_udt", ["test.conllu"], 400, "test.conllu"),
]
NER = [("ner/en", "dev.tsv", 600), ("ner/zh", "train.tsv", 600)]  # both UniversalNER, CC BY-SA 4.0
MANIFEST = {"pos": ["en", "zh", "kk"], "ner": ["en", "zh"], "mlm": ["en", "tr", "zh"], "target": "ug"}

UNER = {
    "en": ("UNER_English-EWT", "the dev file", "English Web Treebank (UD_English-EWT)"),
    "zh": ("UNER_Chinese-GSD", "the train file", "UD_Chinese-GSD"),
}
CC_BY_SA = ("This data is licensed under the Creative Commons Attribution-ShareAlike 4.0 International licence.\n\n"
            "The complete licence text is available at:\nhttp://creativecommons.org/licenses/by-sa/4.0/legalcode\n")

RAW_README = """# Raw text for MLM (one sentence a line)

| file | lines | source | licence |
|---|---:|---|---|
| en.txt | 1,500 | sentence texts (`# text =`) of UD_English-EWT train, none of them in ../ud/en_ewt/train.conllu | CC BY-SA 4.0 (see ../ud/en_ewt/LICENSE.txt and README.md) |
| ug.txt | 2,000 | sentence texts of UD_Uyghur-UDT train and dev, none equal to a UDT test sentence | CC BY-SA 4.0 (see ../ud/ug_udt/LICENSE.txt and README.md) |
| tr.txt | all | Tatoeba sentences (the Turkish side of the LASER Tatoeba test set, facebookresearch/LASER `data/tatoeba/v1`) and the Universal Declaration of Human Rights in Turkish (wooorm/udhr) | Tatoeba: CC BY 2.0 FR, (c) Tatoeba contributors, https://tatoeba.org; UDHR: public domain |
| zh.txt | all | the same, Mandarin Chinese | as tr.txt |

tr.txt and zh.txt are ../shared/data/raw-many/{tr,zh}.txt of the hxtool project unchanged (blank lines
dropped); lines equal to a UD or NER test or dev sentence of that data folder had been removed there.
Tatoeba sentences are licensed under Creative Commons Attribution 2.0 France
(https://creativecommons.org/licenses/by/2.0/fr/); credit: the Tatoeba project and its contributors.
"""


def blocks(path: Path) -> list[str]:
    """Sentence blocks (comments and token lines), without the blank line that ends each."""
    text = path.read_text(encoding="utf-8").replace("\r\n", "\n")
    return [b.strip("\n") for b in text.split("\n\n") if b.strip()]


def sample(items: list, k: int, salt: str) -> list:
    """k items drawn with a fixed seed, kept in their original order."""
    if k >= len(items):
        return list(items)
    picked = sorted(random.Random(f"{SEED}/{salt}").sample(range(len(items)), k))
    return [items[i] for i in picked]


def write_blocks(path: Path, chosen: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(b + "\n\n" for b in chosen), encoding="utf-8", newline="\n")


def texts(chosen: list[str]) -> list[str]:
    return [line[len("# text = "):].strip() for b in chosen for line in b.split("\n") if line.startswith("# text = ")]


def write_lines(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8", newline="\n")


def main(data: Path) -> None:
    for sub in ("ud", "ner", "raw"):
        shutil.rmtree(HERE / sub, ignore_errors=True)
    used: dict[str, list[str]] = {}
    for folder, sources, k, name in TREEBANKS:
        merged = [b for source in sources for b in blocks(data / folder / source)]
        chosen = sample(merged, k, f"{folder}/{name}")
        write_blocks(HERE / folder / name, chosen)
        used[f"{folder}/{name}"] = chosen
        for extra in ("LICENSE.txt", "README.md"):
            shutil.copyfile(data / folder / extra, HERE / folder / extra)
    for folder, source, k in NER:
        lang = folder.split("/")[1]
        write_blocks(HERE / folder / "train.tsv", sample(blocks(data / folder / source), k, folder))
        repo, which, base = UNER[lang]
        (HERE / folder / "LICENSE.txt").write_text(CC_BY_SA, encoding="utf-8")
        (HERE / folder / "README.md").write_text(
            f"# {repo} (sample)\n\n{k} sentences drawn (seed {SEED}) from {which} of UniversalNER/{repo} "
            f"(https://github.com/UniversalNER/{repo}), NER annotation of {base}, as converted in "
            "../shared/data/ner (token<TAB>IOB2 tag, PER/ORG/LOC). CC BY-SA 4.0, see LICENSE.txt.\n\n"
            "Mayhew et al. (2024), Universal NER: A Gold-Standard Multilingual Named Entity Recognition "
            "Benchmark. NAACL 2024.\n", encoding="utf-8")
    # Raw text: English from EWT train sentences not in the POS sample; Uyghur from UDT train and dev
    # minus every test sentence; Turkish and Chinese from Tatoeba + UDHR (raw-many).
    en_pos = set(texts(used["ud/en_ewt/train.conllu"]))
    en_raw = [t for t in texts(blocks(data / "ud/en_ewt/train.conllu")) if t and t not in en_pos]
    write_lines(HERE / "raw/en.txt", sample(list(dict.fromkeys(en_raw)), 1500, "raw/en"))
    ug_test = set(texts(blocks(data / "ud/ug_udt/test.conllu")))
    ug_raw = [t for f in ("train.conllu", "dev.conllu") for t in texts(blocks(data / "ud/ug_udt" / f))
              if t and t not in ug_test]
    write_lines(HERE / "raw/ug.txt", sample(list(dict.fromkeys(ug_raw)), 2000, "raw/ug"))
    for lang in ("tr", "zh"):
        lines = [line.strip() for line in (data / "raw-many" / f"{lang}.txt").read_text(encoding="utf-8").splitlines()]
        write_lines(HERE / f"raw/{lang}.txt", [line for line in lines if line])
    (HERE / "raw/README.md").write_text(RAW_README, encoding="utf-8")
    (HERE / "quickstart.json").write_text(json.dumps(MANIFEST, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(Path(sys.argv[1]))
