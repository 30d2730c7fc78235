"""boulderseg: the pipeline's code, one subpackage per part of dvc.yaml's DAG over the machinery they share; each
`stages/<name>.py` is a thin entry point over it, and `cli` declares every command. Each subpackage's docstring
says what it holds and which others it may import (tests/test_layout.py holds the code to it).
"""
