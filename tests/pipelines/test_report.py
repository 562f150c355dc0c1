"""The training report shows each action's randomized evidence, interval included."""

from __future__ import annotations

from rich.console import Console

from pipelines.report import uplift_table


def test_uplift_table_shows_the_difference_and_its_interval():
    uplift = {"learner": "shift", "version": "3", "rows": 6360,
              "gate": {"decision": "champion"},
              "metrics": {"discount_offer": {"qini": 0.004}},
              "arms": [{"action": "discount_offer", "treated": 1158, "controls": 1449,
                        "churn_treated": 0.063, "churn_control": 0.056, "difference": 0.007,
                        "difference_lo90": -0.008, "difference_hi90": 0.022}]}
    console = Console(record=True, width=200)
    console.print(uplift_table(uplift))
    text = console.export_text()
    assert "shift-learner, version 3 (champion); 6,360 logged actions" in text
    assert "+0.7% [-0.8%, +2.2%]" in text
    assert "1,158" in text and "+0.0040" in text
