"""What the plugin's tables share: their rows are the service's JSON objects."""


class ServiceRows:
    """A table mixin: rows are the service's objects, not API wrapper classes;
    ``id_key`` and ``display_key`` name the fields that identify and show a row (one
    without a display shows its id)."""

    id_key = "id"
    display_key = "name"

    def get_object_id(self, datum):
        return datum[self.id_key]

    def get_object_display(self, datum):
        return datum.get(self.display_key) or datum[self.id_key]
