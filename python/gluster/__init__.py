from pkgutil import extend_path

# A namespace shared with Debian glusterfs-common (gluster.cliutils).
__path__ = extend_path(__path__, __name__)
