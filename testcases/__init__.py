"""The HIL cases (``pytest testcases --rig FILE`` in a checkout; installed, the package
``hil400hd_testcases``: ``pytest --pyargs hil400hd_testcases --rig FILE``)."""
