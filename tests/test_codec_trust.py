"""A saved model's mu-law codec (config.json's ``vocabulary``) is checked before anything is built from it: each
tampered field is one line naming it, never an internal error or a head of the codec's claimed size."""

import json

import pytest

import seqlab
from seqlab.data.audio import MuLaw
from seqlab.errors import SeqlabError
from seqlab.models import LatentAR, LatentARConfig


@pytest.fixture
def saved(tmp_path):
    seqlab.save(LatentAR(MuLaw(8000), LatentARConfig(hidden_size=4, embedding_dim=2)), tmp_path / "m")
    return tmp_path / "m"


def tamper(directory, codec):
    path = directory / "config.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    config["vocabulary"] = codec
    path.write_text(json.dumps(config), encoding="utf-8")


@pytest.mark.parametrize(
    "codec, says",
    [
        ({"mu_law": "256", "sample_rate": 8000}, "mu_law must be an integer from 2 to 65536, got '256'"),
        ({"mu_law": 0, "sample_rate": 8000}, "mu_law must be an integer from 2 to 65536, got 0"),
        ({"mu_law": 10**9, "sample_rate": 8000}, "mu_law must be an integer from 2 to 65536"),
        ({"mu_law": 256, "sample_rate": 1e9}, "sample_rate must be an integer from 1 to 384000"),
        ({"mu_law": 256, "sample_rate": -8000}, "sample_rate must be an integer from 1 to 384000"),
        ({"mu_law": 256, "sample_rate": True}, "sample_rate must be an integer"),
        ({"mu_law": 256}, "holds mu_law and sample_rate, got the fields ['mu_law']"),
        ({"mu_law": 256, "sample_rate": 8000, "extra": 1}, "got the fields ['extra', 'mu_law', 'sample_rate']"),
    ],
)
def test_a_tampered_mu_law_codec_is_one_line(saved, codec, says):
    tamper(saved, codec)
    with pytest.raises(SeqlabError) as caught:
        seqlab.load(saved)
    assert says in str(caught.value) and "\n" not in str(caught.value)


def test_an_untouched_codec_loads(saved):
    model = seqlab.load(saved)
    assert isinstance(model.mu_law, MuLaw) and model.mu_law.sample_rate == 8000 and model.vocabulary is None
