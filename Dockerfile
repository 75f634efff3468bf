FROM python:3.11-slim-bookworm
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bgpmux ./bgpmux
RUN pip install --no-cache-dir . && rm -rf /src
ENTRYPOINT ["bgpmux"]
CMD ["run", "-c", "/etc/bgpmux/bgpmux.yaml"]
