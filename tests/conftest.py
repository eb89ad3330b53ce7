"""Setup shared by every crate's test suite."""

import signal

# A shell without job control starts background commands (`cmd &`) with SIGINT ignored, and
# Python then leaves it ignored: the Ctrl-C tests, which simulate the signal with
# `_thread.interrupt_main()`, would wait for an interrupt that never comes. Restore Python's
# handler so they behave as under a terminal or CI.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
