"""The tqdm display of a fit's progress, fed as the Rust fit feeds it: E-M's job
counter learns its total only once E-M has begun, and the bar must take it then."""

from sustain_rs._progress import _Bars


class FakeBar:
    def __init__(self, total=None, desc="", unit="", leave=True):
        self.total, self.desc, self.n = total, desc, 0
        self.disable = False
        self.closed = False

    def refresh(self):
        pass

    def close(self):
        self.closed = True


def test_em_bar_takes_its_total_once_known():
    made = []

    def tqdm(**kw):
        made.append(FakeBar(**kw))
        return made[-1]

    bars = _Bars(tqdm)
    bars("em", 3, 0, 0, False)
    assert made[0].total is None
    bars("em", 3, 4, 100, False)
    assert (made[0].n, made[0].total) == (4, 100)
    bars("em", 3, 100, 100, True)
    assert made[0].closed and len(made) == 1
