# Opt-in (hub.push.enabled): upload every finished run's model/ with its model card to the Hugging Face
# Hub, after the harness job has put its scores into the card. Needs network: runs on the submitting
# node under a cluster executor.


rule push:
    input:
        metrics=rules.train.output.metrics,
        harness=rules.harness.output[0],
    output:
        L.hub_record(RUN),
    log:
        L.log("push", RUN),
    localrule: True
    conda:
        ENV
    params:
        push=PUSH,
    script:
        "../workflow_scripts/push.py"
