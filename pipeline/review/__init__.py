"""`boulderseg review`: a local web app to look at every video, correct the model's phases and save the sheet
back in the annotators' layout; and the coaches' competition report. `data` reads what the stages wrote (nothing
is recomputed), `guard` keeps other users out (token, Host check, loopback, body limit), `server` is the
Starlette app and its API, `commands` the `review` command.

May import: core, media, annotations, persons, features, learning, views.
"""
