"""The driver core, shared by the datastore and the transfer-manager actions: requests, the volume and
its mount guard, staged writes and sparse copies, qemu-img, the gluster CLI, the disk KVM opens,
OpenNebula's API and monitord. It imports nothing from the actions or the admin side."""
