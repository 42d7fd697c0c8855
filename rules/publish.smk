# Opt-in (hub.push.enabled): upload every finished run's model/ with its model card to the Hugging Face
# Hub, after the harness job has put its scores into the card. Needs network: runs on the submitting
# node under a cluster executor.
from archbench.hub import push_settings

PUSH = push_settings(config)


rule push:
    input:
        metrics=rules.train.output.metrics,
        harness=rules.harness.output[0],
    output:
        f"{R}/hub/{RUN}.json",
    log:
        f"{R}/logs/push/{RUN}.log",
    localrule: True
    params:
        push=PUSH,
    script:
        "../workflow_scripts/push.py"


def push_targets():
    return run_dirs(f"{R}/hub/{{arch}}/{{point}}/seed~{{seed}}.json") if PUSH["enabled"] else []
