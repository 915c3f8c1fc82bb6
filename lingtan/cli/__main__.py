from lingtan.cli import app

app()
