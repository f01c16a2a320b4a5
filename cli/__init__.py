"""python-openstackclient plugin: the openstack protector / openstack dr commands."""
