"""Query a kdzoo student served by TF Serving, over gRPC (PredictRequest) or REST (:predict).

Needs only ``tensorflow`` and ``tensorflow-serving-api`` (plus ``grpcio`` for gRPC, which
tensorflow-serving-api pulls in), not kdzoo. With the container of the README running::

    python examples/serving_client.py --model demo_audio_student --wav clip.wav
    python examples/serving_client.py --model demo_audio_student --wav clip.wav --rest
    python examples/serving_client.py --model demo_audio_student --wav clip.wav --wav-bytes
    python examples/serving_client.py --model sst2_student --text "a gripping film" --print-json

Inputs (repeat an option to send a batch): ``--wav FILE`` is decoded here to a float32
waveform for ``serving_default`` (``--wav-bytes`` sends the file itself to
``serving_wav_bytes``); ``--image FILE`` sends PNG/JPEG bytes; ``--text`` sends a sentence.
``--print-json`` prints the REST body instead of sending anything.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import urllib.request
from pathlib import Path

import numpy as np


def read_inputs(wavs=(), images=(), texts=(), wav_bytes=False):
    """Raw inputs ``{name: array}`` and the signature that takes them."""
    import tensorflow as tf

    inputs = {}
    if wavs:
        contents = [Path(path).read_bytes() for path in wavs]
        if wav_bytes:
            inputs["audio"] = np.array(contents, dtype=object)
        else:
            waves = [tf.audio.decode_wav(c, desired_channels=1)[0][:, 0].numpy() for c in contents]
            length = max(len(w) for w in waves)  # the graph pads/crops to the model's length
            inputs["audio"] = np.stack([np.pad(w, (0, length - len(w))) for w in waves])
    if images:
        inputs["image"] = np.array([Path(path).read_bytes() for path in images], dtype=object)
    if texts:
        inputs["text"] = np.array([t.encode("utf-8") for t in texts], dtype=object)
    if not inputs:
        raise SystemExit("Give at least one input: --wav, --image or --text.")
    sizes = {len(v) for v in inputs.values()}
    if len(sizes) != 1:
        raise SystemExit(f"Every input needs the same batch size; got {sizes}.")
    return inputs, "serving_wav_bytes" if wav_bytes else "serving_default"


def grpc_request(inputs, model, signature="serving_default"):
    """A ``PredictRequest`` proto: one ``TensorProto`` per input."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = signature
    for key, value in inputs.items():
        request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
    return request


def _b64(value):
    return {"b64": base64.b64encode(value).decode("ascii")}


def _text_or_b64(value):
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return _b64(value)


def rest_body(inputs, signature="serving_default", binary=()):
    """The JSON body of ``POST /v1/models/<model>:predict`` (columnar ``"inputs"`` form).

    Byte strings of the inputs named in ``binary`` (and any that are not UTF-8) are sent
    base64-encoded as ``{"b64": ...}``, as TF Serving's REST API requires for binary data;
    other strings as JSON strings.
    """
    body = {}
    for key, value in inputs.items():
        array = np.asarray(value)
        if array.dtype == object or array.dtype.kind == "S":
            items = [bytes(v) for v in array.ravel()]
            body[key] = [_b64(v) if key in binary else _text_or_b64(v) for v in items]
        else:
            body[key] = array.tolist()
    return {"signature_name": signature, "inputs": body}


def predict_grpc(request, target="localhost:8500", timeout=10.0):
    """Sends ``request`` to TF Serving's gRPC port; returns ``{output: array}``."""
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    with grpc.insecure_channel(target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        response = stub.Predict(request, timeout)
    return {k: tf.make_ndarray(v) for k, v in response.outputs.items()}


def predict_rest(body, model, url="http://localhost:8501", timeout=10.0):
    """POSTs ``body`` to ``<url>/v1/models/<model>:predict``; returns the ``"outputs"``."""
    request = urllib.request.Request(
        f"{url}/v1/models/{model}:predict",
        data=json.dumps(body).encode("utf-8"),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())["outputs"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="served model name (MODEL_NAME)")
    parser.add_argument("--wav", action="append", default=[], help="a wav file (8 kHz mono)")
    parser.add_argument("--wav-bytes", action="store_true", help="send wav files as bytes")
    parser.add_argument("--image", action="append", default=[], help="a PNG/JPEG file")
    parser.add_argument("--text", action="append", default=[], help="a sentence")
    parser.add_argument("--rest", action="store_true", help="use REST (:8501), not gRPC")
    parser.add_argument("--host", default="localhost", help="TF Serving host")
    parser.add_argument("--print-json", action="store_true", help="print the REST body only")
    args = parser.parse_args(argv)
    inputs, signature = read_inputs(args.wav, args.image, args.text, args.wav_bytes)
    binary = ("image", "audio")  # encoded image and wav bytes; text goes as JSON strings
    if args.print_json:
        print(json.dumps(rest_body(inputs, signature, binary), indent=2))
        return 0
    if args.rest:
        body = rest_body(inputs, signature, binary)
        outputs = predict_rest(body, args.model, f"http://{args.host}:8501")
    else:
        outputs = predict_grpc(grpc_request(inputs, args.model, signature), f"{args.host}:8500")
    for i, name in enumerate(outputs["class_name"]):
        name = name.decode("utf-8") if isinstance(name, bytes) else name
        print(f"{i}: {name}  p={max(outputs['probabilities'][i]):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
