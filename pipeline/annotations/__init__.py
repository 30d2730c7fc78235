"""The dataset's description, from annotators' workbooks to per-frame labels (the labels stage), one way up:
`text` (how cells and names compare) < `timeparse` (time cells -> seconds), `workbook` (what a file holds before
parsing) < `sheets` (a file -> one video's table of rows) < `segments` (rows -> segments -> per-frame labels, the
label policy) < `videotable` (params.yaml's `videos` table; one entry labelled) < `validate` (every annotation
checked), `catalog` (`add`/`remove` a video), `sample` (the sample dataset), `commands` (their commands).

May import: core, media.
"""
