# One training job per architecture x grid point x seed.


rule train:
    input:
        train=f"{R}/tokens/train.bin",
        validation=f"{R}/tokens/validation.bin",
        test=f"{R}/tokens/test.bin",
        tokenizer=rules.train_tokenizer.output.json,
    output:
        metrics=f"{R}/runs/{RUN}/metrics.json",
        model=f"{R}/runs/{RUN}/model/config.json",
    params:
        settings=settings,
        emissions=config["emissions"],
        scratch=scratch_dir,
    log:
        f"{R}/logs/train/{RUN}.log",
    conda:
        ENV
    threads: 2
    resources:
        gpu=lambda w: 1 if config["training"]["accelerator"] in ("gpu", "cuda") else 0,
    script:
        "../workflow_scripts/train.py"
