# bgpmux's image: Debian bookworm, built from Debian's packages (no container registry): `make image`
# builds the two bases with mmdebstrap (image/base.sh), imports them as local images, then runs
# `buildah bud --pull=never` on this file. See README "The image".
ARG BASE_BUILD=localhost/bgpmux-base-build:bookworm
ARG BASE_RUNTIME=localhost/bgpmux-base-runtime:bookworm

# ---- builder: the wheel, a venv with bgpmux and its dependencies (ExaBGP included), and GoBGP's
# API stubs generated from Debian's golang-github-osrg-gobgp-dev .proto files (never committed).
FROM ${BASE_BUILD} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_ROOT_USER_ACTION=ignore
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bgpmux ./bgpmux
COPY scripts/gobgp_stubs.py ./scripts/
# the build's own tools (grpcio-tools for the stubs), kept out of the image. /run/host-ca.crt:
# the build machine's CA bundle, when `make image` mounts it (a TLS-intercepting proxy to PyPI)
RUN if [ -s /run/host-ca.crt ]; then export PIP_CERT=/run/host-ca.crt; fi \
 && python3 -m venv /opt/build \
 && /opt/build/bin/pip install -q build "grpcio-tools==1.85.1" "protobuf==7.36.2" \
 && /opt/build/bin/python -m build -q --wheel --outdir /wheels .
RUN if [ -s /run/host-ca.crt ]; then export PIP_CERT=/run/host-ca.crt; fi \
 && python3 -m venv /opt/bgpmux \
 && /opt/bgpmux/bin/pip install -q /wheels/bgpmux-*.whl \
 && /opt/bgpmux/bin/pip uninstall -q -y pip setuptools \
 && /opt/build/bin/python scripts/gobgp_stubs.py --cache /tmp/gobgp-deb \
      --out /opt/bgpmux/lib/python3.11/site-packages/bgpmux/engines/gobgp_api \
 && /opt/bgpmux/bin/python -m compileall -q /opt/bgpmux/lib/python3.11/site-packages/bgpmux \
 && find /opt/bgpmux -name '*.pyi' -delete \
 && rm -rf /opt/bgpmux/bin/Activate.ps1 /opt/bgpmux/bin/activate*

# ---- the image: Debian's python3 and gobgpd, the venv; no compilers, no apt, no root.
FROM ${BASE_RUNTIME}
COPY --from=builder /opt/bgpmux /opt/bgpmux
# 65532: a numeric uid, so that runAsNonRoot can check it; it writes only under /run/bgpmux
# (the API socket, the exabgp engine's files): mount a volume there (an emptyDir) and run with
# a read-only root filesystem.
RUN echo "bgpmux:x:65532:65532:bgpmux:/run/bgpmux:/usr/sbin/nologin" >> /etc/passwd \
 && echo "bgpmux:x:65532:" >> /etc/group \
 && install -d -o 65532 -g 65532 -m 0700 /run/bgpmux
ENV PATH=/opt/bgpmux/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 HOME=/run/bgpmux
USER 65532:65532
WORKDIR /run/bgpmux
ENTRYPOINT ["bgpmux"]
CMD ["run", "-c", "/etc/bgpmux/bgpmux.yaml"]
