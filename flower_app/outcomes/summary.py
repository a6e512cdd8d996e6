"""A run summed up in one line: what `MetadataRun` logs as `Summary:`."""

from flower_app.outcomes.model import Outcomes

STAGES = ("train_metadata", "evaluate_metadata")
"""The stages the line always names, in this order; any other follows."""


def summary(outcomes: Outcomes) -> str:
    """Sum a run up in a line.

    Its rounds, the last centralized evaluation (every metric, by name, to
    four decimals), and each stage's accepted, rejected and failed replies
    over all rounds.
    """
    rounds = outcomes.rounds()
    text = f"{len(rounds)} round{'' if len(rounds) == 1 else 's'}, "
    if outcomes.centralized:
        last = outcomes.centralized[max(outcomes.centralized)]
        shown = ", ".join(f"{k} {v:.4f}" for k, v in sorted(last.items()))
        text += f"final centralized {shown}; "
    keys = [*STAGES, *(k for k in outcomes.stages if k not in STAGES)]
    phrases = []
    for key in keys:
        stage = outcomes.stages.get(key)
        if stage is None and key not in STAGES:
            continue
        counts = [
            0 if stage is None else stage.replies(kind)
            for kind in ("accepted", "rejected", "failed")
        ]
        name = key.removesuffix("_metadata") if stage is None else stage.name
        phrases.append(
            f"{name} {counts[0]} accepted, {counts[1]} rejected, {counts[2]} failed"
        )
    return text + "metadata over all rounds: " + "; ".join(phrases)
