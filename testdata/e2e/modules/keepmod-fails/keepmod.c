#include <linux/module.h>
#include <linux/init.h>

/* A broken release (2.0, 4.0): it builds on no kernel at all. */
#error "keepmod @VERSION@ does not build on any kernel"

static int __init keepmod_init(void) { return 0; }
static void __exit keepmod_exit(void) { }
module_init(keepmod_init);
module_exit(keepmod_exit);
MODULE_LICENSE("GPL");
MODULE_VERSION("@VERSION@");
MODULE_DESCRIPTION("dkms-guard end-to-end test module");
