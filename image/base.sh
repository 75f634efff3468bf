#!/bin/sh
# Build the image's two Debian bookworm bases from Debian's packages with mmdebstrap (no container
# registry needed) and import them as local images (used with --pull=never):
#   $BASE_BUILD    minbase + python3-venv, apt lists kept (the builder `apt-get download`s
#                  GoBGP's .proto package);
#   $BASE_RUNTIME  essential + python3 (+ libstdc++6 for grpcio) + gobgpd, no apt, trimmed: no perl, docs but the
#                  copyright files, man pages, locales, apt lists or caches.
# Usage: image/base.sh OUTDIR BASE_BUILD BASE_RUNTIME
set -eu
out=$1 build=$2 runtime=$3
mkdir -p "$out"
trim="--dpkgopt=path-exclude=/usr/share/doc/*
--dpkgopt=path-include=/usr/share/doc/*/copyright
--dpkgopt=path-exclude=/usr/share/man/*
--dpkgopt=path-exclude=/usr/share/info/*
--dpkgopt=path-exclude=/usr/share/locale/*
--dpkgopt=path-exclude=/usr/share/lintian/*"
# shellcheck disable=SC2086 # one option a line
mmdebstrap --quiet --variant=minbase --include=python3-venv --skip=cleanup/apt/lists $trim \
  bookworm "$out/base-build.tar"
# usr-is-merged, and usrmerge (which pulls in perl) purged with perl; then perl-base, glibc's iconv modules, the
# gobgp CLI and the parts of Python's library bgpmux never imports go.
rt=/usr/lib/python3.11
perl="usrmerge libfile-find-rule-perl libnumber-compare-perl libtext-glob-perl perl perl-modules-5.36 \
libperl5.36 libgdbm-compat4"
# shellcheck disable=SC2086
mmdebstrap --quiet --variant=essential --include=usr-is-merged,python3,libstdc++6,gobgpd $trim \
  --customize-hook="chroot \"\$1\" dpkg --purge $perl" \
  --customize-hook='chroot "$1" dpkg --purge --force-remove-essential perl-base 2>/dev/null' \
  --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/* "$1"/var/log/*' \
  --customize-hook='rm -rf "$1"/usr/lib/x86_64-linux-gnu/gconv "$1"/usr/bin/gobgp' \
  --customize-hook="cd \"\$1\"$rt && rm -rf pydoc_data lib2to3 idlelib tkinter turtledemo turtle.py" \
  bookworm "$out/base-runtime.tar"
podman import --quiet "$out/base-build.tar" "$build" >/dev/null
podman import --quiet "$out/base-runtime.tar" "$runtime" >/dev/null
