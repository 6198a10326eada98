"""Transport layer pieces shared by CA and PVA: the I/O thread, completions, callback delivery.

Must not import the Context or anything above it.
"""
