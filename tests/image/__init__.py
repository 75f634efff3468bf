"""The image test (``make image-test``): runs the built image with podman. Not collected by
pytest (no test_*.py here): it needs the image, podman and root, and takes about a minute."""
