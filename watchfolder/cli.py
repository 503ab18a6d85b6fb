"""The command line: parse, load the config, run a command, turn errors into messages and exit codes.

Exit codes: 0 success; 2 bad usage or bad config (and a state directory already in use or damaged);
1 any other failure. Only this module prints errors; the rest raise.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from watchfolder import __version__
from watchfolder.config import settings as config
from watchfolder.core.errors import ConfigError, DamagedStateError, StateLockedError, UsageError, WatchfolderError

COMMANDS = ("run", "check", "status", "retry", "pause", "resume", "auth", "config", "emulator", "demo", "completion")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


def _add_config(parser: argparse.ArgumentParser, *, top: bool) -> None:
    parser.add_argument("-c", "--config", metavar="PATH", default=None if top else argparse.SUPPRESS,
                        help="the config file (default: $WATCHFOLDER_CONFIG, else /etc/watchfolder/config.yaml, "
                             "else ~/.config/watchfolder/config.yaml)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="watchfolder", description="Publish videos and photos dropped in a folder to TikTok.")
    parser.add_argument("--version", action="version", version=f"watchfolder {__version__}")
    _add_config(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    run = sub.add_parser("run", help="the daemon, in the foreground, until SIGTERM/SIGINT")
    _add_config(run, top=False)

    check = sub.add_parser("check", help="validate config, folders, permissions, tokens and the watch method; "
                                         "with FILEs, the verdict for each as if dropped into an inbox")
    _add_config(check, top=False)
    check.add_argument("files", nargs="*", metavar="FILE",
                       help="media to judge as if dropped into the account's inbox (nothing is sent)")
    check.add_argument("--account", metavar="NAME", default=None,
                       help="with FILEs: the account whose inbox to judge for (default: the first)")
    check.add_argument("--json", action="store_true", help="machine-readable output")
    check.add_argument("--offline", action="store_true", help="do not contact TikTok or the media host")

    status = sub.add_parser("status", help="items not yet finished and recent finished ones")
    _add_config(status, top=False)
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.add_argument("--watch", action="store_true", help="show it again every second until Ctrl-C")

    retry = sub.add_parser("retry", help="put a failed item back in its account's inbox")
    _add_config(retry, top=False)
    retry.add_argument("item", metavar="ITEM", help="a name in a failed/ folder, or an item id from status")

    for name, text in (("pause", "hold an account: nothing new starts for it (lasts across restarts)"),
                       ("resume", "lift a pause and every wait of an account, so its next item is tried now")):
        hold = sub.add_parser(name, help=text)
        _add_config(hold, top=False)
        hold.add_argument("account", metavar="ACCOUNT", help="an account name from the config")

    auth = sub.add_parser("auth", help="sign accounts in and out")
    auth_sub = auth.add_subparsers(dest="auth_command", metavar="ACTION", parser_class=_Parser)
    login = auth_sub.add_parser("login", help="OAuth (PKCE) sign-in; --paste for a headless box")
    _add_config(login, top=False)
    login.add_argument("account")
    login.add_argument("--paste", action="store_true", help="do not wait for the browser: paste the redirect URL")
    login.add_argument("--no-browser", action="store_true", help="print the URL instead of opening a browser")
    imp = auth_sub.add_parser("import", help="store tokens obtained elsewhere, read from stdin or --file")
    _add_config(imp, top=False)
    imp.add_argument("account")
    imp.add_argument("--file", metavar="PATH", help="read TikTok's token JSON (or key=value lines) from PATH "
                     "instead of stdin")
    imp.add_argument("--access-token", help="deprecated: visible to other local users; pipe the tokens in")
    imp.add_argument("--refresh-token", help="deprecated: visible to other local users; pipe the tokens in")
    imp.add_argument("--open-id", default=None)
    imp.add_argument("--expires-in", type=float, default=None, help="seconds (default: the input's, or a day)")
    imp.add_argument("--refresh-expires-in", type=float, default=None,
                     help="seconds (default: the input's, or 365 days)")
    imp.add_argument("--scope", default=None)
    lst = auth_sub.add_parser("list", help="accounts, token expiry and scopes (never the tokens)")
    _add_config(lst, top=False)
    lst.add_argument("--json", action="store_true")
    logout = auth_sub.add_parser("logout", help="revoke the tokens at TikTok and delete them here")
    _add_config(logout, top=False)
    logout.add_argument("account")

    conf = sub.add_parser("config", help="print the example config, or the config in force")
    conf_sub = conf.add_subparsers(dest="config_command", metavar="ACTION", parser_class=_Parser)
    conf_sub.add_parser("example", help="the commented example config, every option with its default")
    shown = conf_sub.add_parser("show", help="the effective config: defaults filled in, secrets masked")
    _add_config(shown, top=False)

    emulator = sub.add_parser("emulator", help="the local TikTok API emulator", add_help=False)
    emulator.add_argument("args", nargs=argparse.REMAINDER)

    completion = sub.add_parser("completion", help="print a shell completion script (bash, zsh or fish)")
    completion.add_argument("shell", choices=("bash", "zsh", "fish"))

    demo = sub.add_parser("demo", help="the whole flow end to end on the emulator, in a temporary folder")
    demo.add_argument("--keep", action="store_true", help="keep the temporary folder and print where it is")
    return parser


def _split_emulator(argv: list[str]) -> tuple[list[str], list[str]] | None:
    """``watchfolder [-c P] emulator …`` passes everything after the command to the emulator's own parser.

    Only the first positional argument names the command: an account, an item or a value that happens
    to read "emulator" (``watchfolder status emulator``, ``auth login emulator``) is not the command.
    """
    index = 0
    while index < len(argv):
        arg = argv[index]
        if arg in ("-c", "--config"):
            index += 2
            continue
        if arg.startswith("-"):  # --version, -h, -cPATH, --config=PATH: options of the top level
            index += 1
            continue
        if arg == "emulator":
            return argv[:index], argv[index + 1:]
        return None
    return None


VALUE_OPTIONS = ("--open-id", "--access-token", "--refresh-token", "--scope", "--expires-in",
                 "--refresh-expires-in", "--file", "--config", "-c", "--account")


def join_values(argv: list[str]) -> list[str]:
    """Glue ``--opt value`` into ``--opt=value`` for options that take a value.

    An open_id (or a token) may begin with "-", which argparse would otherwise read as an option.
    """
    joined: list[str] = []
    index = 0
    while index < len(argv):
        arg = argv[index]
        if arg in VALUE_OPTIONS and index + 1 < len(argv):
            joined.append(f"{arg}={argv[index + 1]}" if arg.startswith("--") else arg + argv[index + 1])
            index += 2
            continue
        joined.append(arg)
        index += 1
    return joined


def load_settings(args: argparse.Namespace) -> config.Settings:
    return config.load(getattr(args, "config", None))


def dispatch(args: argparse.Namespace) -> int:
    from watchfolder.commands import auth, check, configuration, demo, retry, run, status

    command = args.command
    if command == "run":
        return run.main(load_settings(args))
    if command == "check":
        if args.files:
            from watchfolder.commands import checkfiles

            return checkfiles.main(load_settings(args), args.files, account_name=args.account, as_json=args.json)
        if args.account:
            raise UsageError("watchfolder check: --account goes with FILEs to judge")
        return check.main(args)
    if command == "status":
        return status.main(load_settings(args), as_json=args.json, watch=args.watch)
    if command == "retry":
        return retry.main(load_settings(args), args.item)
    if command in ("pause", "resume"):
        from watchfolder.commands import pause

        hold = pause.pause if command == "pause" else pause.resume
        return hold(load_settings(args), args.account)
    if command == "auth":
        if args.auth_command is None:
            raise UsageError("watchfolder auth: say login, import, list or logout")
        return auth.main(load_settings(args), args)
    if command == "config":
        return configuration.main(args)
    if command == "completion":
        from watchfolder.commands import completion
        from watchfolder.emulator import cli as emulator_cli

        tree = completion.tree(build_parser(), {"emulator": emulator_cli.build_parser()})
        print(completion.script(args.shell, tree), end="")
        return 0
    if command == "demo":
        return demo.main(keep=args.keep)
    raise UsageError("watchfolder: say which command to run (see watchfolder --help)")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    try:
        split = _split_emulator(args_list)
        if split is not None and not any(a in ("-h", "--help") for a in split[0]):
            from watchfolder.emulator import cli as emulator_cli

            return emulator_cli.main(split[1])
        args = build_parser().parse_args(join_values(args_list))
        if args.command is None:
            build_parser().print_help()
            return 2
        return dispatch(args)
    except ConfigError as exc:
        print(f"watchfolder: {exc}", file=sys.stderr)
        return 2
    except (UsageError, StateLockedError, DamagedStateError) as exc:
        print(f"watchfolder: {exc}", file=sys.stderr)
        return 2
    except WatchfolderError as exc:
        print(f"watchfolder: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
