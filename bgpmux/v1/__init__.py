"""The API's generated stubs (package ``bgpmux.v1``): do not edit; run scripts/gen_stubs.py
after changing proto/bgpmux/v1/*.proto."""
