"""Sharing with the Frontier Model Forum: share proposals, pseudonymisation, STIX 2.1 bundles, TAXII 2.1
push (and, built on the same models, withdrawal and inbound intelligence). DESIGN.md invariant 6;
/work/notes/forum-design.md describes the parts and who builds what."""
