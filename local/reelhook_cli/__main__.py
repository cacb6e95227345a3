from reelhook_cli.main import cli

cli(prog_name="reelhook")
