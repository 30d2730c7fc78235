"""The machinery every part stands on: params.yaml as typed sections (`params`) and its round-trip edits
(`paramsedit`, `profiles`), the one error users see (`errors`), write-then-rename outputs (`atomic`), names that
become file names (`names`), where networks run (`device`), background prefetching (`prefetch`), pinned pretrained
weights (`weights`), what every command shares (`commandline`), and the `profile` command (`commands`).

May import: nothing else of pipeline.
"""
