import itertools

from reelhook.states import ALLOWED_FROM, TERMINAL, Status, can_move

ORDER = [Status.QUEUED, Status.SUBMITTED, Status.RUNNING, Status.STORING, Status.SUCCEEDED]


def test_only_forward_moves_are_allowed():
    for current, target in itertools.product(Status, Status):
        if target in (Status.FAILED, Status.CANCELLED):  # any unfinished job can fail or be cancelled
            expected = current not in TERMINAL
        elif current in TERMINAL or target is Status.QUEUED:
            expected = False
        elif target is Status.SUCCEEDED:
            expected = current is Status.STORING  # only a finished copy succeeds
        else:
            expected = ORDER.index(current) < ORDER.index(target)
        assert can_move(current, target) is expected, (current, target)


def test_terminal_states_are_final():
    for terminal in TERMINAL:
        assert not any(terminal in sources for sources in ALLOWED_FROM.values())
