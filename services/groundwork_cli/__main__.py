from groundwork_cli.main import cli

cli()
