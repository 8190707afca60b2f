"""The `groundwork` command: the local mesh, migrations, seed data and a demo."""
