#include <linux/module.h>
#include <linux/init.h>

/* Its Makefile fails once /etc/fail-markermod exists. */
static int __init markermod_init(void) { return 0; }
static void __exit markermod_exit(void) { }
module_init(markermod_init);
module_exit(markermod_exit);
MODULE_LICENSE("GPL");
MODULE_VERSION("@VERSION@");
MODULE_DESCRIPTION("dkms-guard end-to-end test module");
