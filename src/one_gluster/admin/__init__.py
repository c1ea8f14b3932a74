"""The admin side: the `one-gluster` command (check, prepare, mount, datastore creation, disk XML), the
oned.conf registration that install.sh runs, the lab and the demo. No driver action imports it."""
