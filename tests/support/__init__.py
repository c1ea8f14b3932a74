"""What the tests share beside their fixtures: the lab volumes and their bricks (`labs`), the drivers
called as oned calls them (`drivers`), image makers and readers (`images`), a real libvirtd's VMs
(`domains`), a loopback web server (`net`) and waiting (`system`). The fixtures themselves are in the
conftest.py of each tier."""
