"""The codec fuzzer behind ``make fuzz`` (``python -m tests.fuzz``).

The invariant, as h11's: any input either decodes or raises ``BGPError``; whatever decodes
re-encodes to bytes that decode to the same value; and the export path never emits a message
over the peer's maximum, nor an empty one, nor loses a route. One module a job:

- ``checks``: the invariants, for one input (shared with ``tests/unit/test_fuzz_corpus.py``);
- ``values``: random canonical message values (structure-aware, hand-rolled: faster than
  Hypothesis), and ``wire``: plausible but often wrong UPDATE and OPEN bodies built TLV by TLV;
- ``mutate``: bit flips, insertions, deletions, length-field tweaks and splices of the corpus;
- ``export``: large attribute sets through ``pack_announce`` and ``pack_withdraw``;
- ``corpus``: the seed corpus (``corpus/``) and the findings (``found/``) as files;
- ``targets``: what each target feeds and checks; ``runner``: the timed loop, in processes;
- ``__main__``: the command line.
"""
