"""The rusttorch_data module imports and exposes its Source handle and exceptions."""

import rusttorch_data as rd


def test_exceptions_are_value_errors() -> None:
    assert issubclass(rd.ParseError, ValueError)
    assert issubclass(rd.SchemaError, ValueError)


def test_thread_functions_round_trip() -> None:
    before = rd.get_num_threads()
    rd.set_num_threads(1)
    try:
        assert rd.get_num_threads() == 1
    finally:
        rd.set_num_threads(before)
