"""The parts of ``benchmarks/speed.py``, the inference speed benchmark (its docstring says
what it measures and how to run it).

* :mod:`_speed.workload`: the mixed workload's comments, drawn from the corpora;
* :mod:`_speed.threads`: the thread workload, 50 comments under one article;
* :mod:`_speed.target_share`: how much of scoring a thread is encoding its targets;
* :mod:`_speed.systems`: threadguard's backends and its peers, set up to score them;
* :mod:`_speed.timing`: the timing harness (throughput, latency) and the machine's figures;
* :mod:`_speed.costs`: what threadguard's own cost is made of (input length and batch
  size, the first ONNX export, tokenisation);
* :mod:`_speed.report`: the tables and the goals.

``speed.py`` itself parses the options, runs the fresh processes that measure cold
start and peak memory, and prints the report. It puts ``benchmarks/`` on ``sys.path``,
so these are imported as ``_speed.*``.
"""
