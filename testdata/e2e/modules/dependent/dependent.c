#include <linux/module.h>
#include <linux/init.h>

static int __init dependent_init(void) { return 0; }
static void __exit dependent_exit(void) { }
module_init(dependent_init);
module_exit(dependent_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("dkms-guard end-to-end test module");
