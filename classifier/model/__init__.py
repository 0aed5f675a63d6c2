"""The model wing: everything between a model input and its probabilities.

One job per module (docs/architecture.md lists them): the model's configuration
(``config``), the torch model (``network``; its training loss is ``training.losses``), how a model folder
is written and read (``serialization``), input encoding (``encoding``) and toxic-span
decoding (``spans``), batched prediction (``predictor``) on torch (``torch_predictor``,
``backends``) or ONNX Runtime (``onnx_predictor``, ``onnx_session``), and loading a
predictor for a saved folder (``loading``). Names live in their modules; nothing is
re-exported here, so that importing one part (the ONNX path) loads no other (torch).
"""
