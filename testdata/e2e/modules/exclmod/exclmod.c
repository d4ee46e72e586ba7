#include <linux/module.h>
#include <linux/init.h>

static int __init exclmod_init(void) { return 0; }
static void __exit exclmod_exit(void) { }
module_init(exclmod_init);
module_exit(exclmod_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("dkms-guard end-to-end test module");
