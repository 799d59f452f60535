"""The etcd adapter's tests: helpers live in ``etcd_testkit``; the ``etcd`` client
fixture is shared by every test, in ``tests/conftest.py``."""
