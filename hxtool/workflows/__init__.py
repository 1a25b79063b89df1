"""What the commands do, as library functions: pretrain, add a language, few-shot, the quickstart.

The CLI and the Python API call these; they call training/, model/, data/ and store/, never the reverse.
"""
