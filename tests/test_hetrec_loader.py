"""HetRec 2011 Last.fm 2K, loaded from the real files (AUDIT_SDK_DATA)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from audit_sdk.data.hetrec_loader import (
    HetRecLastfmLoader,
    HetRecLastfmParams,
    classify_tag,
)
from audit_sdk.data.tables import Dataset
from audit_sdk.data.validation import decode_text
from audit_sdk.errors import DataValidationError

pytestmark = pytest.mark.real_data


@pytest.fixture(scope="module")
def hetrec(hetrec_dir: Path) -> Dataset:
    return HetRecLastfmLoader(HetRecLastfmParams(directory=str(hetrec_dir))).load()


def test_counts(hetrec):
    assert len(hetrec.users) == 1892
    assert len(hetrec.interactions) == 92_834
    assert len(hetrec.catalog) == 17_632
    assert hetrec.interactions.frame["item_id"].isin(hetrec.catalog.frame.index).all()
    assert hetrec.metadata["checksums_verified"] is True
    assert not hetrec.interactions.has_timestamps


def test_canonical_tables(hetrec):
    frame = hetrec.interactions.frame
    assert list(frame.columns) == ["user_id", "item_id", "plays"]
    assert frame["plays"].dtype == np.float64
    assert frame.iloc[0].tolist() == ["2", "51", 13883.0]  # first row of user_artists.dat
    catalog = hetrec.catalog.frame
    assert (catalog["title"] == catalog["artist"]).all()
    assert catalog.loc["707", "artist"] == "Metallica"
    assert all(isinstance(g, tuple) for g in catalog["genres"])
    assert catalog["genres"].map(len).max() <= 5
    users = hetrec.users.frame
    assert users["n_artists"].sum() == 92_834
    assert users["n_friends"].sum() == 25_434  # every pair is listed both ways


def test_known_artists_have_sensible_tags(hetrec):
    catalog = hetrec.catalog.frame.set_index("artist")
    assert "pop" in catalog.loc["Britney Spears", "genres"]
    assert "britney spears" not in catalog.loc["Britney Spears", "genres"]
    assert catalog.loc["Metallica", "genres"][0] == "metal"
    assert "hip-hop" in catalog.loc["Eminem", "genres"]
    assert "jazz" in catalog.loc["Miles Davis", "genres"]
    assert catalog.loc["Radiohead", "country"] == "GB"
    assert catalog.loc["Björk", "country"] == "IS"  # artists.dat is UTF-8
    assert catalog.loc["Metallica", "country"] == "US"
    assert catalog.loc["The Beatles", "era"] == "1960s"
    genres = set(hetrec.catalog.frame["genres"].explode().dropna())
    for junk in ("seen live", "favorites", "love", "awesome", "beautiful", "80s", "british"):
        assert junk not in genres, junk
    assert "hip hop" not in genres
    assert "r&b" in genres
    assert "rnb" not in genres


def test_tags_are_decoded_as_latin1(hetrec, hetrec_dir):
    genres = set(hetrec.catalog.frame["genres"].explode().dropna())
    assert "rock français" in genres  # 0xe7 in tags.dat
    assert not any("Ã" in g for g in genres)
    data = (hetrec_dir / "tags.dat").read_bytes()
    with pytest.raises(DataValidationError, match="as 'utf-8'") as err:
        decode_text(data, source="tags.dat", encoding="utf-8")
    offset = data.index(b"\xe1")
    assert err.value.row == data.count(b"\n", 0, offset)  # line - 1 header line


def test_tag_classification():
    assert classify_tag("80s") == ("era", "1980s")
    assert classify_tag("1990s") == ("era", "1990s")
    assert classify_tag("00s") == ("era", "2000s")
    assert classify_tag("British") == ("country", "GB")
    assert classify_tag("usa") == ("country", "US")
    assert classify_tag("j-pop") == ("scene", "JP")
    assert classify_tag("K-Pop") == ("scene", "KR")
    assert classify_tag("swedish death metal") == ("scene", "SE")
    assert classify_tag("seen live") == ("stop", "seen live")
    assert classify_tag("  Hip  Hop ") == ("genre", "hip hop")


def test_fewer_genres_and_stricter_threshold(hetrec_dir):
    dataset = HetRecLastfmLoader(
        HetRecLastfmParams(
            directory=str(hetrec_dir),
            verify_checksums=False,
            max_genres_per_item=2,
            min_tag_count=50,
        )
    ).load()
    genres = dataset.catalog.frame["genres"]
    assert genres.map(len).max() == 2
    assert dataset.metadata["checksums_verified"] is False
    assert dataset.catalog.frame.set_index("artist").loc["Britney Spears", "genres"][0] == "pop"


def _copy(hetrec_dir: Path, target: Path) -> Path:
    shutil.copytree(hetrec_dir, target)
    for path in target.iterdir():
        path.chmod(0o644)
    target.chmod(0o755)
    return target


def test_checksum_mismatch_is_detected(hetrec_dir, tmp_path):
    copy = _copy(hetrec_dir, tmp_path / "lastfm")
    path = copy / "user_friends.dat"
    data = bytearray(path.read_bytes())
    data[-2] = ord("9") if data[-2] != ord("9") else ord("8")
    path.write_bytes(bytes(data))
    with pytest.raises(DataValidationError, match="SHA256 mismatch") as err:
        HetRecLastfmLoader(HetRecLastfmParams(directory=str(copy))).load()
    assert err.value.source == str(path)
    assert "verify_checksums: false" in err.value.hint


def test_missing_file_and_folder(hetrec_dir, tmp_path):
    copy = _copy(hetrec_dir, tmp_path / "lastfm")
    (copy / "tags.dat").unlink()
    (copy / "SHA256SUMS").unlink()
    with pytest.raises(DataValidationError, match="file not found") as err:
        HetRecLastfmLoader(HetRecLastfmParams(directory=str(copy))).load()
    assert err.value.source == str(copy / "tags.dat")
    with pytest.raises(DataValidationError, match="folder not found"):
        HetRecLastfmLoader(HetRecLastfmParams(directory=str(tmp_path / "nowhere"))).load()


def test_corrupt_row_names_file_and_row(hetrec_dir, tmp_path):
    copy = _copy(hetrec_dir, tmp_path / "lastfm")
    path = copy / "user_artists.dat"
    lines = path.read_text(encoding="utf-8").splitlines()
    fields = lines[10].split("\t")
    lines[10] = "\t".join([*fields[:2], "-5"])  # data row 10
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DataValidationError, match="plays must be >= 0") as err:
        HetRecLastfmLoader(HetRecLastfmParams(directory=str(copy), verify_checksums=False)).load()
    assert (err.value.source, err.value.row, err.value.column) == (str(path), 10, "weight")


def test_popularity_is_long_tailed(hetrec):
    listeners = hetrec.interactions.frame.groupby("item_id").size().sort_values(ascending=False)
    top = listeners.iloc[: len(listeners) // 10].sum() / listeners.sum()
    assert top > 0.5
