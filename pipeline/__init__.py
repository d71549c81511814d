"""Apache Beam stages from raw corpora to masked-LM/NSP training instances.

Pure functions live in one module per role (``wiki_xml``, ``books``, ``textnorm``...); Beam
appears only in the ``*_transforms`` modules and the ``*_cli`` entry points. Never imports torch.
"""
