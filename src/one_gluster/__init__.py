"""one-gluster: OpenNebula storage drivers for GlusterFS volumes opened through libgfapi."""

__version__ = "0.1.0"
