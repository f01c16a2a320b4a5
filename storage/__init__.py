"""Array drivers behind one DR interface: :class:`.driver.StorageDriver`, in the words of
:mod:`.base` (protection specs, recovery points, materialised volumes) and the typed
errors of :mod:`.errors`.

:func:`.mock.mock_driver` runs it over simulated arrays (:mod:`.fabric`, SQLite),
:func:`.flasharray_rest2.flasharray_rest2_driver` over real FlashArrays through
``py-pure-client`` (REST 2.x), and :func:`.flasharray.flasharray_driver` through the
``purestorage`` SDK (REST 1.x, for older Purity).
"""
