"""How a `cem` process runs its libraries: quiet by default, everything with ``--debug``.

A failing command is reported in one or two lines by ``pipelines.cli.main``, so Prefect's
logs, library warnings and progress bars are off unless ``--debug`` asks for them; Prefect's
local server never phones home and gets time to start on a busy machine.
"""

from __future__ import annotations

import logging
import os
import warnings

PREFECT_DEFAULTS = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",   # no machine here reaches the internet
    "PREFECT_LOGGING_LEVEL": "WARNING",             # with --debug (else CRITICAL): the CLI reports
    # the local ephemeral server can take longer than Prefect's 20 s on a busy 2-core machine
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
}

DEBUG = {"on": False}   # `cem --debug ...`: full tracebacks and library logs


def apply_defaults(debug: bool) -> None:
    """Set the process's library defaults (environment values already set win)."""
    DEBUG["on"] = debug
    if not debug:
        # a failing step is reported in one or two lines by `main`, not by Prefect's logs
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "CRITICAL")
        warnings.simplefilter("ignore")   # library warnings are for `--debug` runs
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        logging.getLogger("mlflow").setLevel(logging.WARNING)
    for key, value in PREFECT_DEFAULTS.items():
        os.environ.setdefault(key, value)
    # third-party deprecation chatter (ibis under Feast) is not for the user's eyes
    warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"ibis\.")
