"""The application layer: one module per command, typed specs in, result objects out; no printing.

    train       TrainSpec -> TrainResult        a model of any family into a run directory (new, resumed, overwritten)
    evaluate    EvaluateSpec -> EvaluateResult  NLL of a text, or of the held-out part of the training data
    sample      SampleSpec -> SampleResult      text, or seconds of audio into a WAV file
    forecast    ForecastSpec -> ForecastResult  quantiles per step of a series, CSV table and fan chart
    backtest    BacktestSpec -> BacktestResult  rolling-origin scores of forecasting models
    compare     CompareSpec -> CompareResult    every text family on one split, ranked
    experiment  ExperimentSpec -> ExperimentRun one of the notes' measurements at a size
    info        model_dir -> ModelInfo          what a saved model is and was trained on

``run_directory`` holds the run folder: its layout, marker, lock and safe overwrite; ``checkpoints`` what the Trainer
keeps in it and ``training.json``; ``run_data`` which data file a saved run may read, and its fingerprint; ``family``
the steps each model family ``train`` fits takes; ``contenders`` the families ``compare``, ``backtest`` and the
pool build by name, and ``sizing`` how a neural fit on a short series is sized and stopped; ``progress`` what a
person sees while a model trains (bar, Ctrl-C); ``report`` writes every table (Markdown, CSV, JSON).
"""
