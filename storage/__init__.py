"""Array drivers behind one DR interface: :class:`.driver.StorageDriver`, in the words of
:mod:`.base` (protection specs, recovery points, materialised volumes) and the typed
errors of :mod:`.errors`.

:func:`.mock.mock_driver` runs it over simulated arrays (:mod:`.fabric`, SQLite),
:func:`.flasharray.flasharray_driver` over real FlashArrays through the ``purestorage``
SDK.
"""
