"""The console progress of a study (study/adapters/progress.py): counts, ETA and rows per trial."""

from __future__ import annotations

from dataclasses import dataclass, field

from rankae.config import linear_synthetic
from study.adapters.progress import PlanProgress, clock
from trainables.contract import trial_config, trial_runs

# the tests' cost model, by the trial's seed: (its epochs' seconds, what follows them)
CHEAP, DEEP, WITH_DOWNSTREAM = 0, 1, 2
COST = {CHEAP: (10.0, 0.0), DEEP: (30.0, 0.0), WITH_DOWNSTREAM: (10.0, 10.0)}


def planned(seed: int = CHEAP) -> dict:
    """A trial's config as the plan makes it (`trainables.contract`): 10 epochs."""
    return trial_config([linear_synthetic(epochs=10, seed=seed)], checkpoint_every=1)


@dataclass
class Trial:
    """What the reporter reads of a Tune trial: its name, status and last result."""

    name: str
    status: str
    last_result: dict = field(default_factory=dict)
    config: dict = field(default_factory=planned)

    def __str__(self) -> str:
        return self.name


def reporter(**changes) -> PlanProgress:
    settings = dict(title="mnist_alpha_sweep (smoke)", total=4, at_most=True,
                    results_path="/r/run", estimate_s=600.0, work_s=40.0,
                    seconds_of=lambda c: COST[trial_runs(c)[0].seed])  # fmt: skip
    return PlanProgress(**{**settings, **changes})


def test_before_any_epoch_the_eta_is_the_cost_models_estimate():
    progress = reporter()
    line = progress.status_line([Trial("orthogonal-N4-a1-s0", "PENDING")], done=False)
    assert line.startswith("== mnist_alpha_sweep (smoke): 0/up to 4 trials (1 pending) |")
    assert "ETA ~0:10:00 (estimate)" in line or "ETA ~0:09:59 (estimate)" in line


def test_the_eta_weighs_each_trial_by_its_cost_and_extrapolates_the_measured_rate():
    progress = reporter(at_most=False, total=2, work_s=40.0)
    cheap, deep = planned(CHEAP), planned(DEEP)
    progress.eta([Trial("a", "PENDING", config=cheap), Trial("b", "PENDING", config=deep)])
    progress.start -= 100.0  # 100 s in: the cheap trial finished, the deep one is halfway
    trials = [
        Trial("a", "TERMINATED", {"epoch": 10}, cheap),
        Trial("b", "RUNNING", {"epoch": 5}, deep),
    ]
    done = 10.0 + 15.0  # cost-seconds of work; 15 remain
    assert progress.eta(trials) == f"ETA ~{clock(15 / (done / 100))}"
    assert progress.status_line(trials, done=False).startswith("== mnist_alpha_sweep (smoke): 1/2")


def test_a_trial_past_its_last_epoch_still_has_its_downstream_work_to_do():
    progress = reporter(at_most=False, total=1, work_s=20.0)
    both = planned(WITH_DOWNSTREAM)  # as much downstream as training
    assert progress.work_done([Trial("a", "RUNNING", {"epoch": 10}, both)]) == 10.0
    assert progress.work_done([Trial("a", "TERMINATED", {"epoch": 10}, both)]) == 20.0


def test_work_done_before_a_resume_does_not_speed_up_the_eta():
    progress = reporter(at_most=False, total=2, work_s=20.0)
    resumed = [Trial("a", "TERMINATED", {"epoch": 10}), Trial("b", "PAUSED", {"epoch": 5})]
    assert "(estimate)" in progress.eta(resumed)
    progress.start -= 50.0  # 50 s later: trial b did 1 more epoch (1 cost-second), 4 remain
    trials = [resumed[0], Trial("b", "RUNNING", {"epoch": 6})]
    assert progress.eta(trials) == f"ETA ~{clock(4 * 50)}"


def test_each_trial_shows_its_own_name_and_only_the_metrics_it_reported():
    trials = [
        Trial(
            "vanilla-s0",
            "RUNNING",
            {"epoch": 2, "loss": 0.0312345, "latent_rank": 68, "diverged": 0},
        ),
        Trial("explicit-k4-s0", "PENDING"),
    ]
    text = reporter().render(trials, done=True)
    lines = text.splitlines()
    assert lines[0].endswith("| done ==")
    assert lines[1].split() == ["trial", "status", "epoch", "loss", "latent_rank", "diverged"]
    assert lines[2].split() == ["vanilla-s0", "running", "2", "0.03123", "68", "no"]
    assert lines[3].split() == ["explicit-k4-s0", "pending"]
    assert lines[-1] == "results: /r/run"
