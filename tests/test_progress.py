"""Progress counters print done/total and an estimate of what is left, on stderr only."""

from perkrank.progress import Counter, every_quarter


def test_counter_prints_every_nth_unit_and_the_last(capsys):
    counter = Counter("weight search", 5, every=2)
    for unit in range(5):
        counter.advance(f"candidate {unit}")
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert captured.out == ""
    assert [line.split(",")[0].strip() for line in lines] == [
        "weight search 2/5",
        "weight search 4/5",
        "weight search 5/5",
    ]
    assert lines[-1].endswith("~0s left: candidate 4")


def test_every_quarter_prints_about_four_lines():
    assert every_quarter(100) == 25
    assert every_quarter(3) == 1
